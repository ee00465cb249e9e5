"""The tutorials' claims, each declared with the experiment file of the study that tests it
(CLAIMS) and judged only in a report of that study: which claims apply (tutorial_claims) and
what the numbers say (judge). A claim is a paired comparison written as adaptive seeds write
theirs, ``factor:claimed_better_level:other_level:metric``, optionally on the runs where
another factor has one level (``where="activation.name=relu"``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .fmt import ci, is_missing, num, p_is
from .runs import BETTER, ETT, METRIC_LABELS
from .stats import Comparison


@dataclass(frozen=True)
class Declared:
    """A tutorial's claim as its study states it."""

    tutorial: str
    text: str
    compare: str  # "factor:a:b:metric", a = the level the tutorial says is better
    where: str = ""  # "factor=level": the subset the claim is measured on

    def comparison(self) -> Comparison:
        factor, a, b, metric = self.compare.split(":")
        where = tuple(tuple(w.split("=", 1)) for w in self.where.split(",") if w)
        return Comparison(factor, a, b, metric, where)


HE = "He initialisation suits ReLU better than small random / Xavier"
WIDER = "wider hidden layers fit the quadrant task better"
# experiment file (conf/experiment/NAME.yaml) -> the claims its study tests
CLAIMS = {
    "tutorial000_activations": (
        Declared(
            "Tutorial 000",
            "ReLU converges faster than tanh (fewer epochs to the loss threshold)",
            "activation.name:relu:tanh:epochs_to_threshold",
        ),
    ),
    "tutorial001_blobs": (
        Declared(
            "Tutorial 001",
            "plateau decay reaches a lower final training loss",
            "lr_schedule.name:plateau:constant:final_train_loss",
        ),
    ),
    "tutorial002_quadrant": (
        Declared("Tutorial 002", WIDER, "model.hidden_sizes:[64]:[4]:final_test_accuracy"),
        Declared("Tutorial 002", WIDER, "model.hidden_sizes:[64]:[4]:final_train_loss"),
    ),
    "init_x_activation": tuple(
        Declared("Tutorials", HE, f"initializer.name:he_normal:{other}:{metric}", "activation.name=relu")
        for other in ("small_random", "xavier_uniform")
        for metric in ("final_test_accuracy", ETT)
    ),
}


@dataclass(frozen=True)
class Claim:
    tutorial: str
    text: str
    comparison: Comparison | None  # a = the level the tutorial says is better
    context: str = ""  # ", runs with activation.name=relu": the subset the claim is measured on
    why_not: str = ""  # set when the claim cannot be tested here


def _why_not(runs, factors, cmp: Comparison) -> str:
    """Why these runs cannot test the comparison ('' when they can)."""
    for f, lv in ((cmp.factor, cmp.a), (cmp.factor, cmp.b)) + tuple(cmp.where):
        if f not in factors:
            return f"{f} is not a factor of these runs"
        if lv not in set(runs[f]):
            return f"no runs with {f}={lv}"
    return ""


def tutorial_claims(runs, factors, study, table=CLAIMS) -> list:
    """The claims declared for ``study`` (an experiment file's name, None for runs of several
    or none), each with its comparison or why these runs cannot test it."""
    claims = []
    for d in table.get(study or "", ()):
        cmp = d.comparison()
        context = "".join(f", runs with {f}={lv}" for f, lv in cmp.where)
        why = _why_not(runs, factors, cmp)
        claims.append(Claim(d.tutorial, d.text, None if why else cmp, context, why))
    return claims


def verdict(r, better: str, alpha: float, identical: bool) -> str:
    """yes / no / undecided from a comparison row oriented claimed-better minus other."""
    d = r["mean_diff"]
    if identical:
        return "not testable (the two arms are the same computation)"
    if r["n_pairs"] == 0 or math.isnan(d):
        return "not testable (no matched pairs)"
    if d == 0:
        return "no (no difference on any matched pair)"
    favours = d < 0 if better == "lower" else d > 0
    if r["holm_reject"]:
        return "yes" if favours else "no (the opposite holds)"
    seeds = r["seeds_needed"]
    need = (
        f"; about {num(seeds)} seeds would give power 0.8 at this effect"
        if not math.isnan(seeds) and math.isfinite(seeds)
        else ""
    )
    return f"undecided (direction {'agrees' if favours else 'disagrees'}, Holm p >= {alpha:g}{need})"


def better_minus_worse(cmp: Comparison, r, better: str) -> tuple:
    """(better level, worse level, diff, ci low, ci high): the row ``r`` (oriented a - b) turned
    to the report's one convention, the level with the better mean minus the other."""
    d, lo, hi = r["mean_diff"], r["ci_low"], r["ci_high"]
    a_is_better = d < 0 if better == "lower" else d > 0
    if a_is_better or is_missing(d) or d == 0:
        return cmp.a, cmp.b, d, lo, hi
    return cmp.b, cmp.a, -d, -hi, -lo


def judge(claims, result_of, alpha: float, identical_pairs) -> list:
    """One dict per claim: short/long text, verdict and the numbers. ``result_of(cmp)``
    gives the comparison's row oriented as cmp (a - b); ``identical_pairs`` is a set of
    (factor, frozenset{a, b}) of arms found identical."""
    out = []
    for c in claims:
        if c.comparison is None:
            line = f"{c.tutorial}: {c.text}: not testable ({c.why_not})"
            out.append(
                {
                    "tutorial": c.tutorial,
                    "claim": c.text,
                    "verdict": "not testable",
                    "metric": "",
                    "factor": "",
                    "level_a": "",
                    "level_b": "",
                    "p": math.nan,
                    "p_holm": math.nan,
                    "n_pairs": 0,
                    "short": line,
                    "where": "",
                    "text": line,
                }
            )
            continue
        cmp = c.comparison
        r = result_of(cmp)
        ident = (cmp.factor, frozenset((cmp.a, cmp.b))) in identical_pairs
        v = verdict(r, BETTER[cmp.metric], alpha, ident)
        label = METRIC_LABELS[cmp.metric] + (" (restricted, see Definitions)" if cmp.metric == ETT else "")
        where = f"{cmp.a} vs {cmp.b}, {METRIC_LABELS[cmp.metric]}{c.context}"
        hi, lo, d, d_lo, d_hi = better_minus_worse(cmp, r, BETTER[cmp.metric])
        short = f"{c.tutorial}: {c.text}. {where}: {v}; diff {hi} - {lo} {num(d)} {ci(d_lo, d_hi)}" + (
            "" if is_missing(r["p_holm"]) else f", Holm p {p_is(r['p_holm'])}"
        )
        tests = (
            "no test"
            if is_missing(r["p"])
            else f"paired t p {p_is(r['p'])}, Wilcoxon p {p_is(r['wilcoxon_p'])}, d_z {num(r['cohen_dz'])}"
        )
        detail = (
            f"{cmp.factor}={cmp.a} vs {cmp.b}, {label}{c.context}: mean "
            f"{num(r['mean_a'])} vs {num(r['mean_b'])}, {tests}, "
            f"n pairs = {r['n_pairs']}"
        )
        if cmp.metric == ETT and r["n_pairs"]:
            detail += (
                f"; reached the threshold: {cmp.a} {num(r['n_reached_a'])}/"
                f"{r['n_pairs']}, {cmp.b} {num(r['n_reached_b'])}/{r['n_pairs']}"
            )
        if r["note"]:
            detail += f"; {r['note']}"
        out.append(
            {
                "tutorial": c.tutorial,
                "claim": c.text,
                "verdict": v,
                "metric": cmp.metric,
                "factor": cmp.factor,
                "level_a": cmp.a,
                "level_b": cmp.b,
                "p": r["p"],
                "p_holm": r["p_holm"],
                "n_pairs": r["n_pairs"],
                "short": short,
                "where": where,
                "text": f"{short} ({detail})",
            }
        )
    return out
