"""The report's content as data, section by section, from an analysed Study; the prose is in
templates/report.md.j2 (Jinja2), which renders it to Markdown, and markdown-it-py renders
that Markdown to self-contained HTML. The parent run's description and the stdout summary
come from the same numbers.

A table is {"head": [str], "rows": [[str]]}; a figure is {"file": name, "caption": str}.
Every difference is oriented better level minus worse level (runs.BETTER says which way
each metric is better); levels are listed in the study's order (order.study_order)."""

from __future__ import annotations

import base64
import math
import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt

from ..description import table as description_table
from .fmt import ci, is_missing, mean_ci, num, p_is, pval
from .order import rows_in_order
from .runs import (
    BETTER,
    COMPARE_METRICS,
    ETT,
    IGNORED_PREFIXES,
    JOB_METRICS,
    METRIC_LABELS,
    SUMMARY_METRICS,
    constant_params,
    directed,
    direction_words,
    sort_levels,
)

ANSWER_METRIC = "final_test_accuracy"
STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
    "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left}"
    "th{background:#eee}img{max-width:100%}code{background:#f4f4f4}"
)


# --------------------------------------------------------------------------------------
# labels and cells


def _untested(r) -> bool:
    return r["n_pairs"] < 2 or r["note"].startswith("zero difference")


def _result_cell(s, r) -> str:
    if (r["factor"], frozenset((r["level_a"], r["level_b"]))) in s.identical:
        return "identical arms"
    if r["note"].startswith("zero difference"):
        return "no difference"
    if r["n_pairs"] < 2:
        return "no test"
    return "decided" if r["holm_reject"] else "undecided"


def _test_cell(r, key) -> str:
    """A test statistic, or '-' where no test applies (the result column says why)."""
    return "-" if _untested(r) else (num(abs(r[key])) if key == "cohen_dz" else pval(r[key]))


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


def _level_value(s, row, metric) -> tuple:
    """(mean, ci_low, ci_high) of a level: the model-based marginal mean in a factorial
    study, else the t CI over the level's runs."""
    emm = s.level_emms.get((metric, row["factor"]))
    if emm is not None and row["level"] in emm.index:
        e = emm.loc[row["level"]]
        return e["emm"], e["ci_low"], e["ci_high"]
    return row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]


def _level_ci(s, row, metric) -> str:
    return mean_ci(*_level_value(s, row, metric))


def _ci_kind(s) -> str:
    return "marginal mean [95% CI, model]" if s.level_emms else "mean [95% CI]"


def oriented(r) -> dict:
    """A comparison row as better level minus worse level: which level is better is read
    from the observed difference and the metric's direction; a zero difference keeps A, B."""
    flip = (r["mean_diff"] < 0) if BETTER[r["metric"]] == "higher" else (r["mean_diff"] > 0)
    flip = bool(flip) and not is_missing(r["mean_diff"])
    k = ("b", "a") if flip else ("a", "b")
    sign = -1.0 if flip else 1.0
    lo, hi = (r["ci_high"], r["ci_low"]) if flip else (r["ci_low"], r["ci_high"])
    return {
        "better": r[f"level_{k[0]}"],
        "worse": r[f"level_{k[1]}"],
        "mean_better": r[f"mean_{k[0]}"],
        "mean_worse": r[f"mean_{k[1]}"],
        "diff": sign * r["mean_diff"],
        "ci_low": sign * lo,
        "ci_high": sign * hi,
        "reached_better": r.get(f"n_reached_{k[0]}"),
        "reached_worse": r.get(f"n_reached_{k[1]}"),
    }


def _orders(s) -> dict:
    return s.order


def _in_study_order(s, frame):
    """The summary frame's rows, factor by factor, each factor's levels in the study's order."""
    return rows_in_order(frame, s.order)


def _pairs_in_study_order(s, frame):
    order = _orders(s)

    def key(r):
        lv = order.get(r["factor"], [])
        pa = lv.index(r["level_a"]) if r["level_a"] in lv else len(lv)
        pb = lv.index(r["level_b"]) if r["level_b"] in lv else len(lv)
        return (
            list(order).index(r["factor"]) if r["factor"] in order else len(order),
            min(pa, pb),
            max(pa, pb),
        )

    rows = [r for _, r in frame.iterrows()]
    return sorted(rows, key=lambda r: (key(r), COMPARE_METRICS.index(r["metric"])))


# --------------------------------------------------------------------------------------
# sections: each returns data for the template


def seeds_of(s) -> int:
    return int(s.runs.loc[s.runs["state"] == "finished", "seed"].nunique())


def answer(s) -> list:
    """One entry per factor: its best level on final test accuracy against the runner-up,
    the difference better - worse [95% CI] of their paired comparison, and whether it is
    decided (else the seeds that would give power 0.8 at this difference)."""
    out = []
    m = ANSWER_METRIC
    for f in s.factors:
        sub = s.summary[s.summary["factor"] == f]
        means = {r["level"]: _level_value(s, r, m)[0] for _, r in sub.iterrows()}
        ranked = [lv for lv in _orders(s)[f] if lv in means and not is_missing(means[lv])]
        ranked.sort(key=lambda lv: -means[lv] if BETTER[m] == "higher" else means[lv])
        entry = {"factor": f, "metric": direction_words(m), "n_seeds": seeds_of(s)}
        if len(ranked) < 2:
            out.append(dict(entry, status="one level", best=ranked[0] if ranked else None))
            continue
        pair = {ranked[0], ranked[1]}
        rows = [
            r
            for _, r in s.pairwise.iterrows()
            if r["factor"] == f and r["metric"] == m and {r["level_a"], r["level_b"]} == pair
        ]
        if not rows or rows[0]["n_pairs"] == 0:
            out.append(dict(entry, status="no pairs", best=ranked[0], worse=ranked[1]))
            continue
        r = rows[0]
        o = oriented(r)
        entry.update(
            best=o["better"],
            worse=o["worse"],
            mean_better=num(o["mean_better"]),
            mean_worse=num(o["mean_worse"]),
            diff=mean_ci(o["diff"], o["ci_low"], o["ci_high"]),
            n_levels=len(ranked),
            p_holm=p_is(r["p_holm"]),
        )
        if (f, frozenset(pair)) in s.identical:
            entry["status"] = "identical"
        elif _untested(r):
            entry["status"] = "no difference" if r["n_pairs"] >= 2 else "no test"
        elif r["holm_reject"]:
            entry["status"] = "decided"
        else:
            need = r["seeds_needed"]
            entry["status"] = "undecided"
            entry["seeds_needed"] = (
                None if is_missing(need) else "inf" if math.isinf(need) else num(int(math.ceil(need)))
            )
        out.append(entry)
    return out


def section_header(s) -> dict:
    """The title and the bullets under it. The scope's title (and the default one) names the
    sweep and its experiment file: the bullets name them only under a caller's own title."""
    n_aside = len(s.design.set_aside) if s.design is not None else 0
    info = s.scope.lines(n_aside) if s.scope is not None else []
    st = s.runs["state"]
    other = sorted({x for x in s.runs["sweep_id"] if x and x != s.sweep_id})
    jobs = []
    stop = None
    if s.parent is not None:
        jobs = [
            f"{m[len('jobs_') :]} {num(s.parent.get('metrics.' + m))}"
            for m in JOB_METRICS
            if ("metrics." + m) in s.parent.index and not is_missing(s.parent.get("metrics." + m))
        ]
        stop = s.parent.get("tags.adaptive.stop_reason")
    return {
        "title": s.title,
        "scope_lines": info,
        "sweep_id": s.sweep_id if s.own_title else None,
        "parent_id": None if s.parent is None else s.parent["run_id"],
        "study": s.study if s.own_title else None,
        "counts": {k: int((st == k).sum()) for k in ("finished", "diverged", "failed", "unfinished")},
        "n_runs": len(s.runs),
        "n_set_aside": n_aside,  # besides n_runs: the header's two counts add up
        "other_sweeps": [f"`{x}`" for x in other] if s.sweep_id else [],
        "n_other": int((s.runs["sweep_id"] != s.sweep_id).sum()) if s.sweep_id and other else 0,
        "jobs": jobs,
        "stop_reason": None if is_missing(stop) else stop,
    }


def summary_table(s) -> tuple:
    head = [
        "factor",
        "level",
        "runs (finished)",
        f"{directed('final_test_accuracy')} {_ci_kind(s)}",
        f"{directed('final_test_loss')} {_ci_kind(s)}",
        "reached threshold",
        f"{directed(ETT)} (KM median)",
    ]
    rows = [
        [
            r["factor"],
            r["level"],
            f"{r['n_runs']} ({r['n_finished']})",
            _level_ci(s, r, "final_test_accuracy"),
            _level_ci(s, r, "final_test_loss"),
            f"{r[f'{ETT}_n_reached']}/{r['n_finished']}{_fragile(s, r)}",
            _km_cell(r),
        ]
        for _, r in _in_study_order(s, s.summary).iterrows()
    ]
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
        f"{num(r['partial_eta_sq'])}"
        for main, term, label, r in out
    ]


def decided_lines(s) -> list:
    out = []
    for r in _pairs_in_study_order(s, s.pairwise):
        if r["holm_reject"]:
            o = oriented(r)
            out.append(
                f"{r['factor']}: {o['better']} better than {o['worse']} on "
                f"{direction_words(r['metric'])}: {mean_ci(o['diff'], o['ci_low'], o['ci_high'])} "
                f"(Holm p {p_is(r['p_holm'])})"
            )
    return out


def section_summary(s) -> dict:
    head, rows = summary_table(s)
    eff = effect_lines(s) if s.anova else []
    return {
        "table": {"head": head, "rows": rows},
        "claims": [c["short"] for c in s.claims],
        "n_pairwise": len(s.pairwise),
        "m": s.m,
        "alpha": f"{s.alpha:g}",
        "decided": decided_lines(s),
        "n_undecided": int(sum(not r["holm_reject"] and not _untested(r) for _, r in s.pairwise.iterrows())),
        "anova": bool(s.anova),
        "factorial_not_fitted": s.design is not None and len(s.factors) >= 2 and not s.design.complete,
        "effects": eff,
        "n_interactions": sum(e.startswith("interaction") for e in eff),
        "flag_kinds": sorted({f["kind"] for f in s.flags}),
    }


def section_checks(s) -> dict:
    return {"flags": s.flags}


def section_design(s) -> dict:
    order = _orders(s)
    seeds = sort_levels(s.runs["seed"])
    const = [
        [k, v]
        for k, v in constant_params(s.children, s.factors, s.aliases)
        if not k.startswith(IGNORED_PREFIXES)
    ]
    return {
        "factors": {
            "head": ["factor", "levels (study order)", "n levels"],
            "rows": [[f, ", ".join(order[f]), len(order[f])] for f in s.factors],
        }
        if s.factors
        else None,
        "aliases": ", ".join(f"`{k}` -> `{v}`" for k, v in sorted(s.aliases.items())),
        "seeds": ", ".join(seeds),
        "design_lines": s.design.lines() if s.design is not None else [],
        "n_seeds": len(seeds),
        "constants": {"head": ["constant param", "value"], "rows": const} if const else None,
    }


def section_definitions(s) -> dict:
    return {
        "threshold_text": s.threshold_text,
        "horizon": num(s.horizon),
        "n_metrics": len(COMPARE_METRICS),
        "m": s.m,
        "alpha": f"{s.alpha:g}",
        "directions": [direction_words(m) for m in COMPARE_METRICS],
    }


def section_claims(s) -> dict:
    return {
        "texts": [c["text"] for c in s.claims],
        "alpha": f"{s.alpha:g}",
        "of": f"experiment file {s.study}" if s.study else "runs of several or no experiment files",
    }


def section_levels(s) -> dict:
    tables = []
    for f in s.table_factors:
        rows = [
            [r["level"], r["n_runs"], r["n_finished"], f"{r['n_failed']} ({r['n_diverged']})"]
            + [f"{num(r[f'{m}_mean'])} +- {num(r[f'{m}_std'])}" for m in SUMMARY_METRICS]
            + [_level_ci(s, r, m).split(" ", 1)[1] for m in SUMMARY_METRICS]
            for _, r in _in_study_order(s, s.summary[s.summary["factor"] == f]).iterrows()
        ]
        head = (
            ["level", "runs", "finished", "failed (diverged)"]
            + [f"{directed(m)} mean +- sd" for m in SUMMARY_METRICS]
            + [f"{directed(m)} 95% CI" for m in SUMMARY_METRICS]
        )
        tables.append({"factor": f, "head": head, "rows": rows})
    return {"emm": bool(s.level_emms), "tables": tables}


def _fragile(s, r) -> str:
    """' (fragile)' beside the reach rate of an arm the fragile-threshold check names (``s``:
    the report's state or the Report, both carry ``flags``)."""
    arms = {tuple(a) for f in s.flags if f["kind"] == "fragile threshold" for a in f["arms"]}
    factor = None if r["factor"] == "(all runs)" else r["factor"]
    return " (fragile)" if (factor, str(r["level"])) in arms else ""


def section_ett(s) -> dict:
    tables = []
    for f in s.table_factors:
        rows = []
        for _, r in _in_study_order(s, s.summary[s.summary["factor"] == f]).iterrows():
            n = r[f"{ETT}_n_reached"] + r[f"{ETT}_n_not_reached"]
            rows.append(
                [
                    r["level"],
                    f"{r[f'{ETT}_n_reached']} of {n}{_fragile(s, r)}",
                    _km_cell(r),
                    mean_ci(r[f"{ETT}_rmean"], r[f"{ETT}_rmean_ci_low"], r[f"{ETT}_rmean_ci_high"]),
                    num(r[f"{ETT}_mean_reached"]),
                    r[f"{ETT}_n_no_curve"],
                ]
            )
        head = [
            "level",
            "reached",
            "KM median [95% CI] ↓",
            "restricted mean [95% CI] ↓",
            "mean of those that reached",
            "no curve",
        ]
        tables.append({"factor": f, "head": head, "rows": rows})
    return {"threshold_text": s.threshold_text, "horizon": num(s.horizon), "tables": tables}


def _comparison_row(s, r) -> list:
    o = oriented(r)
    note = r["note"]
    if r["metric"] == ETT and r["n_pairs"]:
        reach = (
            f"reached: better {num(o['reached_better'])}/{r['n_pairs']}, worse "
            f"{num(o['reached_worse'])}/{r['n_pairs']}"
        )
        note = f"{reach}; {note}" if note else reach
    return [
        o["better"],
        o["worse"],
        directed(r["metric"]),
        r["n_pairs"],
        num(o["mean_better"]),
        num(o["mean_worse"]),
        mean_ci(o["diff"], o["ci_low"], o["ci_high"]),
        _test_cell(r, "cohen_dz"),
        _test_cell(r, "p"),
        _test_cell(r, "p_holm"),
        _test_cell(r, "wilcoxon_p"),
        _result_cell(s, r),
        _seeds_cell(r),
        note or "-",
    ]


COMPARISON_HEAD = [
    "better",
    "worse",
    "metric",
    "n pairs",
    "mean better",
    "mean worse",
    "diff better - worse [95% CI]",
    "abs d_z",
    "p",
    "Holm p",
    "Wilcoxon p",
    "result",
    "seeds needed",
    "note",
]


def section_comparisons(s) -> dict:
    rows = _pairs_in_study_order(s, s.pairwise)
    return {
        "any": bool(len(s.pairwise)),
        "m": s.m,
        "alpha": f"{s.alpha:g}",
        "tables": [
            {
                "factor": f,
                "head": COMPARISON_HEAD,
                "rows": [_comparison_row(s, r) for r in rows if r["factor"] == f],
            }
            for f in s.factors
        ],
    }


def section_factorial(s) -> dict | None:
    if len(s.factors) < 2:
        return None
    models = []
    for m in COMPARE_METRICS:
        a = s.anova[m]
        model = {"label": directed(m, short=False) + (" (restricted)" if m == ETT else ""), "note": a["note"]}
        if not a["note"]:
            model.update(
                n=a["n"],
                df_resid=num(a["df_resid"]),
                head=["term", "df", "F", "p", "Holm p", "partial eta^2"],
                rows=[
                    [
                        r["term"],
                        num(r["df"]),
                        num(r["F"]),
                        pval(r["p"]),
                        pval(r["p_holm"]),
                        num(r["partial_eta_sq"]),
                    ]
                    for _, r in a["table"].iterrows()
                ],
            )
        models.append(model)
    order = _orders(s)
    rows = []
    for f in s.factors:
        for lv in order[f]:
            cells = []
            for m in COMPARE_METRICS:
                e = s.level_emms.get((m, f))
                cells.append(
                    mean_ci(e.loc[lv, "emm"], e.loc[lv, "ci_low"], e.loc[lv, "ci_high"])
                    if e is not None and lv in e.index
                    else "n/a"
                )
            rows.append([f, lv] + cells)
    head = ["factor", "level"] + [
        directed(m) + (" (restricted)" if m == ETT else "") + " [95% CI]" for m in COMPARE_METRICS
    ]
    figure = s.files["interactions"].name if "interactions" in s.files else None
    return {"models": models, "emms": {"head": head, "rows": rows}, "figure": figure}


def section_schedule(s) -> dict | None:
    if not s.show_lr:
        return None
    tables = []
    for f in s.table_factors:
        rows = [
            [
                r["level"],
                r["n_finished"],
                num(r["lr_decays_min"]),
                num(r["lr_decays_median"]),
                num(r["lr_decays_max"]),
            ]
            for _, r in _in_study_order(s, s.summary[s.summary["factor"] == f]).iterrows()
        ]
        head = ["level", "finished runs", "decays min", "decays median", "decays max"]
        tables.append({"factor": f, "head": head, "rows": rows})
    return {"tables": tables}


def section_failed(s) -> dict:
    bad = s.runs[s.runs["state"] != "finished"]
    if bad.empty:
        return {"table": None}
    head = (
        ["run", "state", "status"]
        + s.factors
        + ["seed", "diverged at epoch", "failure reason", "epochs to threshold"]
    )
    rows = [
        [r["run_id"], r["state"], r["status"]]
        + [r[f] for f in s.factors]
        + [r["seed"], r["diverged_at_epoch"] or "-", r["failure_reason"] or "-", _ett_cell(r)]
        for _, r in bad.iterrows()
    ]
    return {"table": {"head": head, "rows": rows}}


def section_figures(s) -> dict:
    F = s.files
    n = seeds_of(s)
    return {
        "n_seeds": n,
        "band": n >= 3,
        "marginal": len(s.factors) > 1,
        "show_lr": s.show_lr,
        "emm": bool(s.level_emms),
        "curves": F["curves"].name,
        "by_setting": [
            {"factor": k.split(":", 1)[1], "file": F[k].name}
            for k in sorted(k for k in F if k.startswith("by_setting:"))
        ],
        "level_means": F["level_means"].name,
        "effects": F["effects"].name if "effects" in F else None,
        "heatmap": F["heatmap"].name if "heatmap" in F else None,
        "boundaries": F["boundaries"].name,
        "activations": F["activations"].name if "activations" in F else None,
    }


def section_runs(s) -> dict:
    decays = ["lr decays"] if s.show_lr else []
    head = (
        ["run", "state"]
        + s.factors
        + ["seed", directed("final_test_accuracy"), directed("final_test_loss"), directed("final_train_loss")]
        + [directed(ETT)]
        + decays
    )
    rows = [
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
    ]
    return {"table": {"head": head, "rows": rows}}


SECTIONS = {
    "header": section_header,
    "answer": answer,
    "summary": section_summary,
    "checks": section_checks,
    "design": section_design,
    "claims": section_claims,
    "levels": section_levels,
    "ett": section_ett,
    "comparisons": section_comparisons,
    "factorial": section_factorial,
    "schedule": section_schedule,
    "failed": section_failed,
    "figures": section_figures,
    "runs": section_runs,
    "definitions": section_definitions,
}


def document(s) -> dict:
    """The template's context: {section name: its data}."""
    return {name: build(s) for name, build in SECTIONS.items()}


# --------------------------------------------------------------------------------------
# the parent's description and stdout


def description(s, html_page: str | None) -> str:
    """Markdown for the parent run's description: the answer, the summary table, the
    verdicts and the decided comparisons, the checks, and a link to report/report.html."""
    out = [f"**{s.title}**", ""]
    if html_page:
        out += [
            f"Full report: [report/report.html]({html_page}) (artifact `report/report.html` of this run).",
            "",
        ]
    answers = _template("answer.md.j2").render(answer=answer(s)).strip()
    if answers:
        out += [answers, ""]
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
    """A one-screen table of the summary for stdout, levels in the study's order."""
    head = [
        "factor",
        "level",
        "runs",
        "fin",
        "fail",
        "test acc ↑ mean [95% CI]",
        "reached thr",
        "KM median ↓",
    ]
    rows = []
    m = "final_test_accuracy"
    emm = f"{m}_emm" in report.summary
    if emm:
        head[5] = "test acc ↑ marginal mean [95% CI]"
    for _, r in rows_in_order(report.summary, report.order).iterrows():
        k = f"{m}_emm" if emm else f"{m}_mean"
        rows.append(
            [
                r["factor"],
                r["level"],
                str(r["n_runs"]),
                str(r["n_finished"]),
                str(r["n_failed"]),
                mean_ci(r[k], r[k.replace("_mean", "") + "_ci_low"], r[k.replace("_mean", "") + "_ci_high"]),
                f"{r[f'{ETT}_n_reached']}/{r['n_finished']}{_fragile(report, r)}",
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


def md_cell(value) -> str:
    """A Markdown table cell: pipes escaped, on one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def oneline(text) -> str:
    """A template's multi-line prose as one line (single spaces, no space before , . ; :)."""
    return re.sub(r"\s+([,.;:)])", r"\1", re.sub(r"\s+", " ", str(text))).strip()


@lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shallownet.report", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML: markdown-it escapes when it renders HTML
    )
    env.filters["cell"] = md_cell
    env.filters["oneline"] = oneline
    return env


def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


def render_markdown(doc: dict, image_src=None) -> str:
    """report.md from the context ``doc``; ``image_src(name)`` gives each figure's link."""
    text = _template("report.md.j2").render(image=image_src or (lambda name: name), **doc)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


@lru_cache(maxsize=None)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_html(doc: dict, out_dir: Path, title: str) -> str:
    """Self-contained report.html: the Markdown rendered by markdown-it-py, every figure
    inlined as a data: URI."""

    def inline(name):
        return "data:image/png;base64," + base64.b64encode((out_dir / name).read_bytes()).decode("ascii")

    body = _markdown().render(render_markdown(doc, inline))
    return _template("report.html.j2").render(title=title, style=STYLE, body=body)
