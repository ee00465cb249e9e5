"""The tutorials' claims, each tested by a paired comparison of the study when its factors
allow: which claims apply (tutorial_claims) and what the numbers say (judge)."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from .fmt import ci, is_missing, num, p_is
from .runs import BETTER, ETT, METRIC_LABELS, constant_value, level_key, sort_levels
from .stats import Comparison


@dataclass(frozen=True)
class Claim:
    tutorial: str
    text: str
    comparison: Comparison | None  # a = the level the tutorial says is better
    context: str = ""  # ", ReLU runs": the subset the claim is measured on
    why_not: str = ""  # set when the claim cannot be tested here


def _find_factor(factors, names):
    for n in names:
        if n in factors:
            return n
    for f in factors:
        if any(f.endswith("." + n) for n in names):
            return f
    return None


def _width(level: str):
    try:
        v = ast.literal_eval(level)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
        return float(sum(v))
    return None


def tutorial_claims(runs, children, factors) -> list:
    """The claims this study's factors can test (or say why not)."""
    claims = []
    act = _find_factor(factors, ["activation.name", "activation"])
    act_const = constant_value(children, "activation.name")

    if act is not None and {"relu", "tanh"} <= set(runs[act]):
        claims.append(
            Claim(
                "Tutorial 000/001",
                "ReLU converges faster than tanh (fewer epochs to the loss threshold)",
                Comparison(act, "relu", "tanh", ETT),
            )
        )

    init = _find_factor(factors, ["initializer.name", "initializer"])
    if init is not None:
        text = "He initialisation suits ReLU better than small random / Xavier"
        levels = sort_levels(runs[init])
        he = [lv for lv in levels if lv.startswith("he")]
        base = [lv for lv in levels if lv.startswith(("small", "xavier", "glorot"))]
        where, ctx = (), ""
        if act is not None:
            where, ctx = ((act, "relu"),), ", ReLU runs"
        if not he or not base:
            pass
        elif (act is not None and "relu" not in set(runs[act])) or (
            act is None and act_const not in (None, "relu")
        ):
            claims.append(Claim("Tutorials", text, None, why_not="no ReLU runs in this study"))
        else:
            for h in he:
                for b in base:
                    for m in ("final_test_accuracy", ETT):
                        claims.append(Claim("Tutorials", text, Comparison(init, h, b, m, where), ctx))

    sched = _find_factor(factors, ["lr_schedule.name", "lr_schedule"])
    if sched is not None and {"plateau", "constant"} <= set(runs[sched]):
        claims.append(
            Claim(
                "Tutorials",
                "plateau decay reaches a lower final training loss",
                Comparison(sched, "plateau", "constant", "final_train_loss"),
            )
        )

    hid = _find_factor(factors, ["model.hidden_sizes", "hidden_sizes"])
    if hid is None:
        hid = next((f for f in factors if "hidden" in f), None)
    if hid is not None:
        widths = {lv: _width(lv) for lv in sort_levels(runs[hid])}
        widths = {k: v for k, v in widths.items() if v is not None}
        if len(widths) >= 2:
            where, ctx = (), ""
            ds = _find_factor(factors, ["dataset.name"])
            ds_const = constant_value(children, "dataset.name")
            if ds is not None:
                where, ctx = ((ds, "quadrant"),), ", quadrant runs"
            elif ds_const not in (None, "quadrant"):
                ctx = f", measured on dataset {ds_const}, not quadrant"
            text = "wider hidden layers fit the quadrant task better"
            if ds is not None and "quadrant" not in set(runs[ds]):
                claims.append(Claim("Tutorial 002", text, None, why_not="no quadrant runs in this study"))
            else:
                order = sorted(widths, key=lambda k: (widths[k], level_key(k)))
                narrow, wide = order[0], order[-1]
                for m in ("final_test_accuracy", "final_train_loss"):
                    claims.append(Claim("Tutorial 002", text, Comparison(hid, wide, narrow, m, where), ctx))
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
        short = (
            f"{c.tutorial}: {c.text}. {where}: {v}; diff {num(r['mean_diff'])} "
            f"{ci(r['ci_low'], r['ci_high'])}"
            + ("" if is_missing(r["p_holm"]) else f", Holm p {p_is(r['p_holm'])}")
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
