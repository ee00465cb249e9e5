"""The report as one list of blocks, built section by section from an analysed Study, and
rendered to markdown and to self-contained HTML; the parent run's description and the
stdout summary come from the same numbers.

A block is ("h", level, text) | ("p", text) | ("ul", [items]) | ("table", head, rows) |
("img", file name, caption)."""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from ..description import table as description_table
from .fmt import ci, is_missing, mean_ci, num, p_is, pval
from .runs import (
    COMPARE_METRICS,
    ETT,
    IGNORED_PREFIXES,
    JOB_METRICS,
    METRIC_LABELS,
    SHORT_LABELS,
    SUMMARY_METRICS,
    constant_params,
    sort_levels,
)

FIGURE_CAPTIONS = {
    "curves": "Curves per epoch: train loss (dashed black: the loss threshold), test loss, "
    "test accuracy{lr}, one row per factor. Each level's line is {what}; {spread}.{lr_note}",
    "by_setting": "Train loss and test accuracy by {factor} within each setting of the other "
    "factors (a pair of panels per setting, every panel of a metric on the same y range): "
    "the mean over the seeds of that setting; {spread}.",
    "level_means": "Final test accuracy per level, on an axis zoomed to the data: grey dots "
    "are the finished runs, the coloured point and whiskers the {what}.",
    "effects": "Paired differences A - B of every comparison: thick bar = 95% CI, thin bar "
    "= Bonferroni-level CI (1 - alpha/m), filled marker = Holm-adjusted p < "
    "alpha. Epochs to threshold are the restricted values (see Definitions).",
    "heatmap": "Mean final test accuracy per pair of factors, averaged over the remaining "
    "factors and the seeds; one colour scale for every panel.",
    "interactions": "Interaction plots: model-based marginal means (95% CI) of each pair of "
    "factors; parallel lines mean no interaction.",
    "boundaries": "Decision boundaries of each level's representative run: the finished run "
    "with the median final test accuracy among all runs of that level, tied accuracies "
    "ordered by final test loss (its other factors and seed are in the title); each run's "
    "own plot at its own size.",
    "activations": "The activation functions of the study (solid) and their derivatives (dashed).",
}


# --------------------------------------------------------------------------------------
# helpers


def _untested(r) -> bool:
    return r["n_pairs"] < 2 or r["note"].startswith("zero difference")


def _result_cell(s, r) -> str:
    if (r["factor"], frozenset((r["level_a"], r["level_b"]))) in s.identical:
        return "identical arms"
    if r["note"].startswith("zero difference"):
        return "no difference"
    if r["n_pairs"] < 2:
        return "no test"
    if not r["holm_reject"]:
        return "undecided"
    return "A > B" if r["mean_diff"] > 0 else "A < B"


def _test_cell(r, key) -> str:
    """A test statistic, or '-' where no test applies (the result column says why)."""
    return "-" if _untested(r) else (num(r[key]) if key == "cohen_dz" else pval(r[key]))


def _seeds_cell(r) -> str:
    if r["holm_reject"] or _untested(r):
        return "-"
    s = r["seeds_needed"]
    if is_missing(s):
        return "n/a"
    return "no effect seen" if math.isinf(s) else num(s)


def _ett_cell(r) -> str:
    return num(r[ETT]) if r["ett_status"] == "reached" else r["ett_status"]


def _km_cell(row) -> str:
    med = row[f"{ETT}_km_median"]
    if is_missing(med):
        return "n/a"
    if math.isinf(med):
        return "not reached by half"
    return f"{num(med)} {ci(row[f'{ETT}_km_ci_low'], row[f'{ETT}_km_ci_high'], 'open')}"


def _level_ci(s, row, metric):
    """'mean [CI]' of a level: the model-based marginal mean in a factorial study, else the
    t CI over the level's runs."""
    emm = s.level_emms.get((metric, row["factor"]))
    if emm is not None and row["level"] in emm.index:
        e = emm.loc[row["level"]]
        return mean_ci(e["emm"], e["ci_low"], e["ci_high"])
    return mean_ci(row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])


def _ci_kind(s) -> str:
    return "marginal mean [95% CI, model]" if s.level_emms else "mean [95% CI]"


# --------------------------------------------------------------------------------------
# sections


def section_header(s) -> list:
    info = s.scope.lines() if s.scope is not None else []
    if s.sweep_id:
        info.append(f"Sweep: `{s.sweep_id}`")
    if s.parent is not None:
        info.append(f"Parent run: `{s.parent['run_id']}`")
    if s.study:
        info.append(f"Study: `{s.study}`")
    st = s.runs["state"]
    info.append(
        f"Child runs: {len(s.runs)} ({int((st == 'finished').sum())} finished, "
        f"{int((st == 'diverged').sum())} diverged, {int((st == 'failed').sum())} "
        f"failed, {int((st == 'unfinished').sum())} unfinished)"
    )
    other = sorted({x for x in s.runs["sweep_id"] if x and x != s.sweep_id})
    if s.sweep_id and other:
        n = int((s.runs["sweep_id"] != s.sweep_id).sum())
        info.append(
            f"{n} of them from other sweeps ({', '.join(f'`{x}`' for x in other)}): "
            "configs this sweep skipped because an identical run had finished"
        )
    if s.parent is not None:
        jobs = [
            f"{m[len('jobs_') :]} {num(s.parent.get('metrics.' + m))}"
            for m in JOB_METRICS
            if ("metrics." + m) in s.parent.index and not is_missing(s.parent.get("metrics." + m))
        ]
        if jobs:
            info.append("Parent job counters: " + ", ".join(jobs))
        stop = s.parent.get("tags.adaptive.stop_reason")
        if not is_missing(stop):
            info.append(
                f"Adaptive seeds (rounds until the named comparisons are decided, "
                f"`hparams_search=adaptive`): {stop}"
            )
    return [("h", 1, s.title), ("ul", info)]


def summary_table(s) -> tuple:
    head = [
        "factor",
        "level",
        "runs (finished)",
        f"test acc {_ci_kind(s)}",
        f"test loss {_ci_kind(s)}",
        "reached threshold",
        "epochs to thr. (KM median)",
    ]
    rows = []
    for _, r in s.summary.iterrows():
        rows.append(
            [
                r["factor"],
                r["level"],
                f"{r['n_runs']} ({r['n_finished']})",
                _level_ci(s, r, "final_test_accuracy"),
                _level_ci(s, r, "final_test_loss"),
                f"{r[f'{ETT}_n_reached']}/{r['n_finished']}",
                _km_cell(r),
            ]
        )
    return head, rows


def effect_lines(s) -> list:
    """The ANOVA terms with Holm-adjusted p < alpha (interactions first)."""
    out = []
    for m in COMPARE_METRICS:
        a = s.anova.get(m)
        if not a or a["note"]:
            continue
        for _, r in a["table"].iterrows():
            if r["p_holm"] < s.alpha and r["term"] != "seed (block)":
                out.append((" x " not in r["term"], r["term"], METRIC_LABELS[m], r))
    out.sort(key=lambda x: x[0])
    return [
        f"{'interaction' if not main else 'main effect'} {term} on {label}: F = "
        f"{num(r['F'])}, Holm p {p_is(r['p_holm'])}, partial eta^2 = "
        f"{num(r['partial_eta_sq'], 3)}"
        for main, term, label, r in out
    ]


def decided_lines(s) -> list:
    out = []
    for _, r in s.pairwise.iterrows():
        if r["holm_reject"]:
            out.append(
                f"{r['factor']}: {r['level_a']} - {r['level_b']}, "
                f"{METRIC_LABELS[r['metric']]}: {num(r['mean_diff'])} "
                f"{ci(r['ci_low'], r['ci_high'])} (Holm p {p_is(r['p_holm'])})"
            )
    return out


def section_summary(s) -> list:
    B = [("h", 2, "Summary")]
    head, rows = summary_table(s)
    B.append(("table", head, rows))
    if s.claims:
        B.append(("p", "**Tutorial claims** (verdicts use Holm-adjusted p):"))
        B.append(("ul", [c["short"] for c in s.claims]))
    dec = decided_lines(s)
    n_und = int(sum(not r["holm_reject"] and not _untested(r) for _, r in s.pairwise.iterrows()))
    if len(s.pairwise) and s.m == 0:
        B.append(
            (
                "p",
                "**No comparison of this study can be tested**: every pair of levels "
                "gives the same value on every matched pair (see Study checks).",
            )
        )
    elif len(s.pairwise):
        B.append(
            (
                "p",
                f"**Decided comparisons** (Holm-adjusted p < {s.alpha:g} among the "
                f"m = {s.m} comparisons of this report; difference A - B [95% CI]):"
                + ("" if dec else " none."),
            )
        )
        if dec:
            B.append(("ul", dec))
        if n_und:
            B.append(
                (
                    "p",
                    f"{n_und} comparison(s) undecided: the Paired comparisons section "
                    "gives the seeds each would need.",
                )
            )
    if s.design is not None and len(s.factors) >= 2 and not s.design.complete:
        B.append(
            ("p", "**Factorial model** not fitted: the design has empty or single-run cells (see Design).")
        )
    elif s.anova:
        eff = effect_lines(s)
        inter = [e for e in eff if e.startswith("interaction")]
        B.append(
            (
                "p",
                "**Factorial model** (type-II ANOVA, Holm over its terms): "
                + (
                    f"{len(inter)} interaction(s) significant, so the paired differences "
                    "above are averages over settings whose effects differ (see the "
                    "interaction plots):"
                    if inter
                    else "no interaction significant; "
                )
                + ("" if inter else "main effects:" if eff else "no effect significant."),
            )
        )
        if eff:
            B.append(("ul", eff))
    if s.flags:
        B.append(
            (
                "p",
                "**Study checks** flagged: "
                + "; ".join(sorted({f["kind"] for f in s.flags}))
                + " (see below).",
            )
        )
    return B


def section_checks(s) -> list:
    B = [("h", 2, "Study checks")]
    if s.flags:
        B.append(("ul", [f"**{f['kind']}**: {f['text']}" for f in s.flags]))
    else:
        B.append(
            (
                "p",
                "No degenerate arm, zero-variance or saturated metric, inert schedule "
                "or uninformative threshold found.",
            )
        )
    return B


def section_design(s) -> list:
    B = [("h", 2, "Design")]
    if s.factors:
        B.append(
            (
                "table",
                ["factor", "levels", "n levels"],
                [[f, ", ".join(sort_levels(s.runs[f])), len(sort_levels(s.runs[f]))] for f in s.factors],
            )
        )
    else:
        B.append(("p", "No parameter varies across the runs except the seed: one group."))
    if s.aliases:
        B.append(
            (
                "p",
                "Aliased params (determined by a factor, not analysed separately): "
                + ", ".join(f"`{k}` -> `{v}`" for k, v in sorted(s.aliases.items()))
                + ".",
            )
        )
    seeds = sort_levels(s.runs["seed"])
    B.append(("p", f"Replicates (seed): {', '.join(seeds)} ({len(seeds)} seeds)."))
    if s.design is not None:
        B.append(("ul", s.design.lines()))
    const = [
        (k, v)
        for k, v in constant_params(s.children, s.factors, s.aliases)
        if not k.startswith(IGNORED_PREFIXES)
    ]
    if const:
        B.append(("table", ["constant param", "value"], [[k, v] for k, v in const]))
    return B


def section_definitions(s) -> list:
    items = [
        "**Factors**: the params whose value differs between the child runs, except `seed` "
        "(the replicate axis), `tracking.*`, `hydra.*`, `sweep.*` (and `--ignore-param` "
        "keys). A param that is a function of another factor (e.g. `activation.alpha`, set "
        "only for leaky_relu) is an alias of it. Levels sort numerically when they are "
        "numbers, by their numbers when they are lists of numbers, else as strings.",
        "**Run states**: finished (status FINISHED), diverged (FAILED with a "
        "`diverged_at_epoch` tag), failed (FAILED/KILLED otherwise), unfinished "
        "(RUNNING/SCHEDULED). Every run is counted and listed; statistics use finished runs.",
        "**Mean, sd, 95% CI**: mean, std (ddof=1) and the t interval of the mean, "
        "mean +- t(0.975, n-1) x se with se = sd/sqrt(n) (`scipy.stats.t.ppf`), computed on a "
        "scale that respects the metric's range and mapped back, never clipped: logit of "
        "(mean - lo)/(hi - lo) for accuracy [0, 1] and epochs to threshold [0, tau], log for "
        "losses >= 0, se carried over by the delta method; so a CI contains its mean and "
        "stays inside the range. In the per-level tables of a single-factor study these are "
        "over the level's runs.",
        "**Marginal means** (studies with two factors or more, only over a complete crossed "
        "design with at least 2 runs per cell, see Design): the mean of a level averaged "
        "over a balanced grid of every level of the other factors and every seed, predicted "
        "by the linear model below (`statsmodels` GLM Gaussian, "
        "`get_prediction(grid, average=True)` for the mean and its standard error), 95% CI "
        "= mean +- t(0.975, residual df) x se on the scale of the range, as above. On a balanced design the marginal mean is the "
        "plain mean of the level's runs; its CI uses the model's residual variance, not the "
        "spread between the other factors' settings.",
        f"**Epochs to threshold**: the first `epoch` of the run's full-resolution "
        f"`curves.parquet` at which train_loss <= threshold; threshold (shared by all runs): "
        f"{s.threshold_text}. A run that never reaches it is right-censored at its last "
        f"epoch, never dropped: per level the report gives 'reached k of n', the "
        f"Kaplan-Meier median and its 95% CI (`statsmodels.duration.survfunc.SurvfuncRight`, "
        f"`quantile(0.5)` and `quantile_ci`; 'open' = no upper bound, 'not reached by half' "
        f"= the estimate never falls to 0.5) and the restricted mean: the mean of "
        f"min(epochs to threshold, tau) with not reached counting tau = {num(s.horizon)} "
        f"epochs (the fewest epochs any finished run trained). Comparisons use that "
        f"restricted value, so every matched pair counts and a run that never gets there "
        f"ranks last (its Wilcoxon rank is the largest); dropping such pairs would bias the "
        f"comparison toward the slower level. The mean over the runs that reached it is "
        f"listed as a description only.",
        "**Paired comparisons**: for levels A and B of a factor, finished runs are matched on "
        "every other factor and the seed; d = A - B per pair. Effect = mean(d) with its 95% "
        "CI (`scipy.stats.ttest_rel(a, b).confidence_interval(0.95)`); p = paired t-test "
        "(`scipy.stats.ttest_rel`); Wilcoxon signed-rank p (`scipy.stats.wilcoxon`, default "
        "options) as a rank-based check; Cohen's d_z = mean(d) / sd(d). Pairs span the "
        "settings of the other factors, so the effect is the average over them "
        "(interactions are in Factorial analysis).",
        f"**Multiplicity**: the family is every comparison of this report with a defined p "
        f"(all pairs of levels x {len(COMPARE_METRICS)} metrics, plus the tutorial claims "
        f"measured on a subset of runs): m = {s.m}. p-values are Holm-Bonferroni adjusted "
        f"over it (`statsmodels.stats.multitest.multipletests(method='holm')`); raw p is "
        f"kept beside. Verdicts and 'decided' use Holm-adjusted p < alpha = {s.alpha:g}. "
        f"The Bonferroni-level CI (the t CI at 1 - alpha/m) is consistent with Holm: when it "
        "excludes 0, the Holm-adjusted p is below alpha too.",
        "**Seeds needed** (undecided comparisons): the smallest number of pairs n at which "
        "a two-sided paired t-test at alpha/m has power 0.8 against the observed d_z "
        "(`statsmodels.stats.power.TTestPower().power`; where it returns NaN for a large "
        "effect, the upper tail `scipy.stats.nct.sf`), divided by the pairs one seed gives "
        "(the matched settings of the other factors), rounded up. The observed effect of a "
        "small study is uncertain: a rough guide, not a promise.",
        "**Factorial analysis**: the linear model metric ~ every factor + every two-factor "
        "interaction + seed (block; when every cell has the same seeds) over the finished runs (`statsmodels.formula.api.ols`), "
        "type-II ANOVA F tests (`statsmodels.stats.anova.anova_lm(typ=2)`), partial eta "
        "squared = SS_term / (SS_term + SS_residual); the ANOVA p-values are Holm-adjusted "
        "among themselves (terms x metrics).",
        "**Study checks**: identical arms = two levels whose matched runs have identical "
        "curves at every epoch; zero variance = a metric with one value in every finished "
        "run; saturated = at least half the runs at test accuracy 1; schedule never acted = "
        "a non-constant lr schedule with 0 decays in every run; lr decays of a run = the "
        "epochs e of `curves.parquet` with lr[e] < lr[e-1].",
    ]
    return [("h", 2, "Definitions"), ("ul", items)]


def section_claims(s) -> list:
    B = [("h", 2, "Tutorial claims")]
    if s.claims:
        B.append(("ul", [c["text"] for c in s.claims]))
        B.append(
            (
                "p",
                f"yes = the difference favours the claim with Holm-adjusted p < "
                f"{s.alpha:g}; differences are (claimed-better level) - (other level) "
                "on runs matched by the other factors and the seed.",
            )
        )
    else:
        of = f"experiment file {s.study}" if s.study else "runs of several or no experiment files"
        B.append(("p", f"No tutorial claim is declared for {of}."))
    return B


def section_levels(s) -> list:
    B = [("h", 2, "Results per factor level")]
    if s.level_emms:
        B.append(
            (
                "p",
                "mean +- sd are over the level's finished runs (pooling the other "
                "factors' settings); the CIs are those of the model-based marginal "
                "means (Definitions).",
            )
        )
    for f in s.table_factors:
        rows = []
        for _, r in s.summary[s.summary["factor"] == f].iterrows():
            rows.append(
                [r["level"], r["n_runs"], r["n_finished"], f"{r['n_failed']} ({r['n_diverged']})"]
                + [f"{num(r[f'{m}_mean'])} +- {num(r[f'{m}_std'])}" for m in SUMMARY_METRICS]
                + [_level_ci(s, r, m).split(" ", 1)[1] for m in SUMMARY_METRICS]
            )
        B.append(("h", 3, f))
        B.append(
            (
                "table",
                ["level", "runs", "finished", "failed (diverged)"]
                + [f"{SHORT_LABELS[m]} mean +- sd" for m in SUMMARY_METRICS]
                + [f"{SHORT_LABELS[m]} 95% CI" for m in SUMMARY_METRICS],
                rows,
            )
        )
    return B


def section_ett(s) -> list:
    B = [
        ("h", 2, "Epochs to threshold (censored)"),
        (
            "p",
            f"Threshold: {s.threshold_text}. Not reached = censored, counted in every "
            f"column; restricted mean: not reached counts tau = {num(s.horizon)} epochs.",
        ),
    ]
    for f in s.table_factors:
        rows = []
        for _, r in s.summary[s.summary["factor"] == f].iterrows():
            n = r[f"{ETT}_n_reached"] + r[f"{ETT}_n_not_reached"]
            rows.append(
                [
                    r["level"],
                    f"{r[f'{ETT}_n_reached']} of {n}",
                    _km_cell(r),
                    mean_ci(r[f"{ETT}_rmean"], r[f"{ETT}_rmean_ci_low"], r[f"{ETT}_rmean_ci_high"]),
                    num(r[f"{ETT}_mean_reached"]),
                    r[f"{ETT}_n_no_curve"],
                ]
            )
        B.append(("h", 3, f))
        B.append(
            (
                "table",
                [
                    "level",
                    "reached",
                    "KM median [95% CI]",
                    "restricted mean [95% CI]",
                    "mean of those that reached",
                    "no curve",
                ],
                rows,
            )
        )
    return B


def section_comparisons(s) -> list:
    B = [("h", 2, "Paired comparisons")]
    if not len(s.pairwise):
        return B + [("p", "No factor: nothing to compare.")]
    B.append(
        (
            "p",
            f"diff = mean paired difference A - B [95% CI]; p = paired t-test, Holm p "
            f"= adjusted over the m = {s.m} comparisons of the report; result uses Holm "
            f"p < {s.alpha:g}; seeds needed: for power 0.8 at the observed effect "
            "(Definitions). Epochs to threshold: restricted values.",
        )
    )
    for f in s.factors:
        rows = []
        for _, r in s.pairwise[s.pairwise["factor"] == f].iterrows():
            note = r["note"]
            if r["metric"] == ETT and r["n_pairs"]:
                reach = (
                    f"reached: A {num(r['n_reached_a'])}/{r['n_pairs']}, B "
                    f"{num(r['n_reached_b'])}/{r['n_pairs']}"
                )
                note = f"{reach}; {note}" if note else reach
            rows.append(
                [
                    r["level_a"],
                    r["level_b"],
                    SHORT_LABELS[r["metric"]],
                    r["n_pairs"],
                    num(r["mean_a"]),
                    num(r["mean_b"]),
                    mean_ci(r["mean_diff"], r["ci_low"], r["ci_high"]),
                    _test_cell(r, "cohen_dz"),
                    _test_cell(r, "p"),
                    _test_cell(r, "p_holm"),
                    _test_cell(r, "wilcoxon_p"),
                    _result_cell(s, r),
                    _seeds_cell(r),
                    note or "-",
                ]
            )
        B.append(("h", 3, f))
        B.append(
            (
                "table",
                [
                    "A",
                    "B",
                    "metric",
                    "n pairs",
                    "mean A",
                    "mean B",
                    "diff A-B [95% CI]",
                    "d_z",
                    "p",
                    "Holm p",
                    "Wilcoxon p",
                    "result",
                    "seeds needed",
                    "note",
                ],
                rows,
            )
        )
    return B


def section_factorial(s) -> list:
    if len(s.factors) < 2:
        return []
    B = [
        ("h", 2, "Factorial analysis"),
        (
            "p",
            "Main effects and two-factor interactions: type-II ANOVA of metric ~ factors + "
            "their pairwise interactions + seed (block); Holm p over all the terms and "
            "metrics below.",
        ),
    ]
    for m in COMPARE_METRICS:
        a = s.anova[m]
        B.append(("h", 3, METRIC_LABELS[m] + (" (restricted)" if m == ETT else "")))
        if a["note"]:
            B.append(("p", f"Not modelled: {a['note']}."))
            continue
        rows = [
            [
                r["term"],
                num(r["df"]),
                num(r["F"]),
                pval(r["p"]),
                pval(r["p_holm"]),
                num(r["partial_eta_sq"], 3),
            ]
            for _, r in a["table"].iterrows()
        ]
        B.append(("p", f"{a['n']} finished runs, residual df {num(a['df_resid'])}."))
        B.append(("table", ["term", "df", "F", "p", "Holm p", "partial eta^2"], rows))
    B.append(("h", 3, "Marginal means"))
    rows = []
    for f in s.factors:
        for lv in sort_levels(s.runs[f]):
            cells = []
            for m in COMPARE_METRICS:
                e = s.level_emms.get((m, f))
                cells.append(
                    mean_ci(e.loc[lv, "emm"], e.loc[lv, "ci_low"], e.loc[lv, "ci_high"])
                    if e is not None and lv in e.index
                    else "n/a"
                )
            rows.append([f, lv] + cells)
    B.append(
        (
            "table",
            ["factor", "level"]
            + [
                SHORT_LABELS[m] + (" (restricted)" if m == ETT else "") + " [95% CI]" for m in COMPARE_METRICS
            ],
            rows,
        )
    )
    if "interactions" in s.files:
        B.append(("img", s.files["interactions"].name, FIGURE_CAPTIONS["interactions"]))
    return B


def section_schedule(s) -> list:
    if not s.show_lr:
        return []
    B = [
        ("h", 2, "Learning-rate schedule"),
        (
            "p",
            "lr decays per run = epochs at which the learning rate fell (curves.parquet). "
            "The lr curves are the last column of the curves figure.",
        ),
    ]
    for f in s.table_factors:
        rows = [
            [
                r["level"],
                r["n_finished"],
                num(r["lr_decays_min"]),
                num(r["lr_decays_median"]),
                num(r["lr_decays_max"]),
            ]
            for _, r in s.summary[s.summary["factor"] == f].iterrows()
        ]
        B.append(("h", 3, f))
        B.append(("table", ["level", "finished runs", "decays min", "decays median", "decays max"], rows))
    return B


def section_failed(s) -> list:
    B = [("h", 2, "Failed and diverged runs")]
    bad = s.runs[s.runs["state"] != "finished"]
    if bad.empty:
        return B + [("p", "None.")]
    return B + [
        (
            "table",
            ["run", "state", "status"]
            + s.factors
            + ["seed", "diverged at epoch", "failure reason", "epochs to threshold"],
            [
                [r["run_id"], r["state"], r["status"]]
                + [r[f] for f in s.factors]
                + [r["seed"], r["diverged_at_epoch"] or "-", r["failure_reason"] or "-", _ett_cell(r)]
                for _, r in bad.iterrows()
            ],
        )
    ]


def section_figures(s) -> list:
    B = [("h", 2, "Figures")]
    F = s.files
    n = s.runs.loc[s.runs["state"] == "finished", "seed"].nunique()
    spread = (
        "the band is the 95% t CI over seeds"
        if n >= 3
        else f"thin lines are the {n} seeds' own curves (too few seeds for a CI band)"
    )
    what = (
        "the mean over seeds of each seed's average over the settings of the other factors "
        "(a marginal mean: the per-setting figures below hold the other factors fixed)"
        if len(s.factors) > 1
        else "the mean over its seeds"
    )
    lr_note = (
        " Learning rate: each seed's own schedule as a thin line (its decays), the mean over seeds bold."
        if s.show_lr
        else " No learning-rate panel: no run changes its rate during training (constant schedule)."
    )
    B.append(
        (
            "p",
            FIGURE_CAPTIONS["curves"].format(
                lr=", learning rate" if s.show_lr else "", what=what, spread=spread, lr_note=lr_note
            ),
        )
    )
    B.append(("img", F["curves"].name, "Curves per epoch"))
    for key in sorted(k for k in F if k.startswith("by_setting:")):
        f = key.split(":", 1)[1]
        B.append(("p", FIGURE_CAPTIONS["by_setting"].format(factor=f"`{f}`", spread=spread)))
        B.append(("img", F[key].name, f"Train loss and test accuracy by {f} per setting"))
    what = (
        "model-based marginal mean and its 95% CI"
        if s.level_emms
        else "mean and its 95% t CI over the level's runs"
    )
    B.append(("p", FIGURE_CAPTIONS["level_means"].format(what=what)))
    B.append(("img", F["level_means"].name, "Final test accuracy per level"))
    if "effects" in F:
        B.append(("p", FIGURE_CAPTIONS["effects"]))
        B.append(("img", F["effects"].name, "Paired differences"))
    if "heatmap" in F:
        B.append(("p", FIGURE_CAPTIONS["heatmap"]))
        B.append(("img", F["heatmap"].name, "Final test accuracy heatmap"))
    B.append(("p", FIGURE_CAPTIONS["boundaries"]))
    B.append(("img", F["boundaries"].name, "Decision boundaries"))
    if "activations" in F:
        B.append(("p", FIGURE_CAPTIONS["activations"]))
        B.append(("img", F["activations"].name, "Activations and derivatives"))
    return B


def section_runs(s) -> list:
    decays = ["lr decays"] if s.show_lr else []
    return [
        ("h", 2, "All runs"),
        (
            "table",
            ["run", "state"]
            + s.factors
            + ["seed", "test acc", "test loss", "train loss", "epochs to threshold"]
            + decays,
            [
                [r["run_id"], r["state"]]
                + [r[f] for f in s.factors]
                + [
                    r["seed"],
                    num(r["final_test_accuracy"]),
                    num(r["final_test_loss"]),
                    num(r["final_train_loss"]),
                    _ett_cell(r),
                ]
                + ([num(r["lr_decays"])] if s.show_lr else [])
                for _, r in s.runs.iterrows()
            ],
        ),
    ]


SECTIONS = (
    section_header,
    section_summary,
    section_checks,
    section_design,
    section_definitions,
    section_claims,
    section_levels,
    section_ett,
    section_comparisons,
    section_factorial,
    section_schedule,
    section_failed,
    section_figures,
    section_runs,
)


def document(s) -> list:
    return [b for section in SECTIONS for b in section(s)]


# --------------------------------------------------------------------------------------
# the parent's description and stdout


def description(s, html_page: str | None) -> str:
    """Markdown for the parent run's description: the summary table, the verdicts and the
    decided comparisons, the checks, and a link to report/report.html."""
    out = [f"**{s.title}**", ""]
    if html_page:
        out += [
            f"Full report: [report/report.html]({html_page}) (artifact `report/report.html` of this run).",
            "",
        ]
    out += description_table(*summary_table(s))
    if s.claims:
        out += ["", "**Tutorial claims**", ""] + [f"- {c['short']}" for c in s.claims]
    dec = decided_lines(s)
    if len(s.pairwise):
        out += ["", f"**Decided** (Holm p < {s.alpha:g}, m = {s.m})" + (":" if dec else ": none"), ""]
        out += [f"- {d}" for d in dec]
    inter = [e for e in effect_lines(s) if e.startswith("interaction")]
    if inter:
        out += ["", "**Interactions** (ANOVA, Holm p < alpha):", ""] + [f"- {e}" for e in inter]
    if s.flags:
        out += ["", "**Study checks**: " + "; ".join(sorted({f["kind"] for f in s.flags}))]
    return "\n".join(out) + "\n"


def summary_text(report) -> str:
    """A one-screen table of the summary for stdout."""
    head = ["factor", "level", "runs", "fin", "fail", "test acc mean [95% CI]", "reached thr", "KM median"]
    rows = []
    m = "final_test_accuracy"
    emm = f"{m}_emm" in report.summary
    if emm:
        head[5] = "test acc marginal mean [95% CI]"
    for _, r in report.summary.iterrows():
        k = f"{m}_emm" if emm else f"{m}_mean"
        rows.append(
            [
                r["factor"],
                r["level"],
                str(r["n_runs"]),
                str(r["n_finished"]),
                str(r["n_failed"]),
                mean_ci(r[k], r[k.replace("_mean", "") + "_ci_low"], r[k.replace("_mean", "") + "_ci_high"]),
                f"{r[f'{ETT}_n_reached']}/{r['n_finished']}",
                _km_cell(r),
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append(f"threshold: train_loss <= {num(report.threshold)}")
    out += ["* " + c["short"] for c in report.claims]
    out += ["! " + f["kind"] + ": " + f["text"] for f in report.flags]
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# rendering


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _inline_html(s: str) -> str:
    s = html.escape(s, quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def render_markdown(blocks) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in b[1]))
        elif kind == "table":
            head, rows = b[1], b[2]
            lines = [
                "| " + " | ".join(_md_cell(h) for h in head) + " |",
                "|" + "|".join("---" for _ in head) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})")
    return "\n\n".join(out) + "\n"


def render_html(blocks, out_dir: Path, title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_inline_html(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "ul":
            body.append("<ul>\n" + "\n".join(f"<li>{_inline_html(x)}</li>" for x in b[1]) + "\n</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1])
            rows = "\n".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b[2]
            )
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>")
        elif kind == "img":
            data = base64.b64encode((out_dir / b[1]).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(b[2])}" '
                f'src="data:image/png;base64,{data}"><figcaption>'
                f"{html.escape(b[2])}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
        "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}"
        "th{background:#eee}img{max-width:100%}code{background:#f4f4f4}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
