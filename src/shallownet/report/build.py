"""build_report: the pipeline from a runs frame to the report's files (and, for a sweep, to
its parent run): run table -> curve measures -> statistics -> figures -> documents."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..record import store, tracking
from . import checks, claims as claims_mod, design, document, factorial, figures, order as order_mod, stats
from .fmt import is_missing
from .runs import (
    ALL_FACTOR,
    COMPARE_METRICS,
    add_curve_measures,
    constant_value,
    find_factors,
    load_curves,
    lr_varies,
    ordered_levels,
    split_parent,
    tidy_runs,
)
from .scope import sweep_title

DEFAULT_LOSS_FRACTION = 0.5
REPORT_FILES = ("report_md", "report_html", "summary_csv", "comparisons_csv")


class ReportError(RuntimeError):
    """A problem shown to the user as one line (sweep not found, store missing, ...)."""


@dataclass
class Study:
    """Everything the document, the figures and the description are made from."""

    runs: pd.DataFrame  # run table: one row per child run
    children: pd.DataFrame  # the child rows of the runs frame (params.*, tags.*)
    parent: pd.Series | None
    factors: list
    aliases: dict
    alpha: float
    title: str = ""
    own_title: bool = False  # a title build_report was given, not the scope's or the default
    sweep_id: str | None = None
    study: str | None = None
    threshold: float = float("nan")
    threshold_text: str = ""
    horizon: float = float("nan")
    summary: pd.DataFrame | None = None
    results: pd.DataFrame | None = None  # the whole family of comparisons (claims included)
    pairwise: pd.DataFrame | None = None  # its rows over all runs (no subset)
    m: int = 0
    claims: list = field(default_factory=list)
    anova: dict = field(default_factory=dict)  # metric -> factorial.anova(...)
    level_emms: dict = field(default_factory=dict)  # (metric, factor) -> frame by level
    pair_emms: dict = field(default_factory=dict)  # (metric, fa, fb) -> frame
    flags: list = field(default_factory=list)
    identical: set = field(default_factory=set)  # {(factor, frozenset({a, b}))} same computation
    show_lr: bool = False
    files: dict = field(default_factory=dict)
    scope: object = None  # scope.Scope: what the report covers (its title and first lines)
    design: object = None  # design.Design: cells, replicates, runs set aside
    order: dict = field(default_factory=dict)  # {factor: levels in the study's order} (order.py)

    @property
    def table_factors(self):
        return self.factors if self.factors else [ALL_FACTOR]


@dataclass
class Report:
    out_dir: Path
    files: dict  # name -> Path of every file written
    summary: pd.DataFrame  # one row per (factor, level), unrounded
    comparisons: pd.DataFrame  # the family: one row per comparison, unrounded
    runs: pd.DataFrame
    factors: list
    threshold: float
    claims: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    anova: dict = field(default_factory=dict)
    parent_run_id: str | None = None
    logged_artifacts: list = field(default_factory=list)
    description: str = ""
    order: dict = field(default_factory=dict)  # {factor: levels in the study's order}


def _tag(row, key):
    if row is None:
        return None
    v = row.get("tags." + key)
    return None if is_missing(v) else str(v)


def _one_value(children, key):
    col = children.get("tags." + key)
    vals = sorted({str(v) for v in col if not is_missing(v)}) if col is not None else []
    return vals


def new_study(runs_df, ignore_params, alpha, title, scope=None) -> Study:
    parents, children = split_parent(runs_df)
    if children.empty:
        raise ReportError("no child runs to report on")
    parent = (
        parents.sort_values(["start_time", "run_id"], kind="mergesort").iloc[-1]
        if not parents.empty and (scope is None or scope.sweep_id is not None)
        else None
    )
    children, set_aside = design.set_aside_repeats(children)
    factors, aliases = find_factors(children, ignore=tuple(ignore_params))
    runs = tidy_runs(children, factors if factors else [ALL_FACTOR])
    s = Study(runs, children, parent, factors, aliases, alpha)
    s.design = design.work_out(runs, factors, set_aside)
    s.sweep_id = _tag(parent, tracking.TAG_SWEEP)
    if s.sweep_id is None:
        ids = _one_value(children, tracking.TAG_SWEEP)
        s.sweep_id = ids[0] if len(ids) == 1 else None
    s.study = _tag(parent, tracking.TAG_STUDY) or ", ".join(_one_value(children, tracking.TAG_STUDY)) or None
    if scope is not None:  # an --experiment report is no sweep's, even of one sweep's runs
        s.sweep_id, s.study, s.scope = scope.sweep_id, scope.study, scope
    s.title = title or (scope.title if scope else _default_title(s))
    s.own_title = bool(title)  # the caller's title may name neither sweep nor study
    s.order = order_mod.study_order(runs, factors, s.study, children)
    return s


def _default_title(s: Study) -> str:
    """Without a scope: the sweep's title (its id and experiment file), else the study's."""
    if s.sweep_id is None:
        return f"shallownet report: {s.study or 'runs'}"
    if s.study is None or ", " in s.study:
        return f"Sweep {s.sweep_id}" + (f": experiment files {s.study}" if s.study else "")
    return sweep_title(s.sweep_id, s.study)


def analyse(s: Study, curves: dict) -> None:
    """Summary, the comparison family with Holm, claims, factorial model, study checks."""
    runs, factors = s.runs, s.factors
    s.summary = stats.summarize(runs, s.table_factors)
    pairwise = stats.pairwise(runs, factors, COMPARE_METRICS)
    claims = claims_mod.tutorial_claims(runs, factors, s.study)
    family, seen = [], set()
    for c in pairwise + [c.comparison for c in claims if c.comparison is not None]:
        if c.hypothesis() not in seen:
            seen.add(c.hypothesis())
            family.append(c)
    s.results = stats.evaluate_comparisons(runs, family, factors, alpha=s.alpha)
    s.m = int(s.results["m"].iloc[0]) if len(s.results) else 0
    s.pairwise = s.results[s.results["where"] == ""].reset_index(drop=True)
    index = {c.hypothesis(): i for i, c in enumerate(family)}

    def result_of(cmp):
        return stats.orient(s.results.iloc[index[cmp.hypothesis()]], cmp)

    sched = next((f for f in factors if f.startswith("lr_schedule.") and f.endswith(".name")), None)
    s.flags = checks.study_checks(
        runs, factors, curves, constant_value(s.children, "lr_schedule.name"), threshold=s.threshold
    )
    s.flags += s.design.flags()
    s.identical = {
        (f["factor"], frozenset((f["a"], f["b"]))) for f in s.flags if f["kind"] == "identical arms"
    }
    s.claims = claims_mod.judge(claims, result_of, s.alpha, s.identical)
    s.show_lr = sched is not None or any(lr_varies(c) for c in curves.values())
    if len(factors) >= 2:
        _factorial(s) if s.design.complete else _not_modelled(s)


def _not_modelled(s: Study) -> None:
    """An incomplete design: no ANOVA, no marginal means; every model section says why."""
    for m in COMPARE_METRICS:
        s.anova[m] = {
            "metric": m,
            "table": pd.DataFrame(columns=["term", "df", "sum_sq", "F", "p", "partial_eta_sq", "p_holm"]),
            "df_resid": float("nan"),
            "n": int((s.runs["state"] == "finished").sum()),
            "note": f"the design is not complete with {design.MIN_REPLICATES} runs per cell (see Design)",
        }


def _factorial(s: Study) -> None:
    ps = []
    for m in COMPARE_METRICS:
        s.anova[m] = factorial.anova(s.runs, s.factors, m)
        ps += list(s.anova[m]["table"]["p"])
    adj = iter(stats.holm(ps))
    for m in COMPARE_METRICS:
        t = s.anova[m]["table"]
        t["p_holm"] = [next(adj) for _ in range(len(t))]
        for f in s.factors:
            e = factorial.marginal_means(s.runs, s.factors, m, [f])
            if len(e):
                s.level_emms[(m, f)] = e.set_index(f)
        for fa, fb in figures._pairs(s.factors):
            s.pair_emms[(m, fa, fb)] = factorial.marginal_means(s.runs, s.factors, m, [fa, fb])
    for (m, f), e in s.level_emms.items():  # into summary.csv
        col = {"emm": f"{m}_emm", "ci_low": f"{m}_emm_ci_low", "ci_high": f"{m}_emm_ci_high"}
        for k, name in col.items():
            sel = s.summary["factor"] == f
            s.summary.loc[sel, name] = s.summary.loc[sel, "level"].map(e[k]).to_numpy(dtype=np.float64)


def draw(s: Study, curves, client, out_dir: Path, tmp: Path) -> dict:
    """Every figure of the study -> {key: path}."""
    f, F, order = s.table_factors, {}, s.order
    F["curves"] = figures.fig_curves(s.runs, curves, f, s.threshold, out_dir / "curves.png", s.show_lr, order)
    if len(s.factors) >= 2:
        for i, fac in enumerate(s.factors):
            F[f"by_setting:{fac}"] = figures.fig_curves_by_setting(
                s.runs,
                curves,
                s.factors,
                fac,
                s.threshold,
                out_dir / f"curves_by_setting_{i + 1}.png",
                order,
            )
    means = {}
    for fac in f:
        sub = s.summary[s.summary["factor"] == fac]
        e = s.level_emms.get(("final_test_accuracy", fac))
        means[fac] = pd.DataFrame(
            {
                "level": sub["level"].to_numpy(),
                "mean": sub["level"].map(e["emm"]).to_numpy()
                if e is not None
                else sub["final_test_accuracy_mean"].to_numpy(),
                "ci_low": sub["level"].map(e["ci_low"]).to_numpy()
                if e is not None
                else sub["final_test_accuracy_ci_low"].to_numpy(),
                "ci_high": sub["level"].map(e["ci_high"]).to_numpy()
                if e is not None
                else sub["final_test_accuracy_ci_high"].to_numpy(),
                "n": sub["final_test_accuracy_n"].to_numpy(),
            }
        )
    what = "marginal mean, model 95% CI" if s.level_emms else "mean, 95% t CI"
    F["level_means"] = figures.fig_level_means(s.runs, f, means, out_dir / "accuracy.png", what, order)
    if len(s.pairwise):
        F["effects"] = figures.fig_effects(
            s.pairwise, list(COMPARE_METRICS), out_dir / "effects.png", s.identical, order
        )
    if len(s.factors) >= 2:
        F["heatmap"] = figures.fig_heatmap(s.runs, s.factors, out_dir / "accuracy_heatmap.png", order)
        F["interactions"] = figures.fig_interactions(
            s.factors,
            s.pair_emms,
            {m: a["note"] for m, a in s.anova.items()},
            ["final_test_accuracy", "final_train_loss"],
            out_dir / "interactions.png",
            order,
        )
    F["boundaries"] = figures.fig_boundaries(
        s.runs, f, client, tmp / "png", out_dir / "decision_boundaries.png", order
    )
    act = next((x for x in s.factors if x in ("activation.name", "activation")), None)
    if act is not None:
        alpha = constant_value(s.children, "activation.alpha")
        try:
            alpha = float(alpha) if alpha is not None else 0.01
        except ValueError:
            alpha = 0.01
        F["activations"] = figures.fig_activations(
            ordered_levels(s.runs[act], order.get(act)), alpha, out_dir / "activations.png"
        )
    return F


def write_documents(s: Study, out_dir: Path) -> dict:
    blocks = document.document(s)
    paths = {
        "report_md": out_dir / "report.md",
        "report_html": out_dir / "report.html",
        "summary_csv": out_dir / "summary.csv",
        "comparisons_csv": out_dir / "comparisons.csv",
    }
    paths["report_md"].write_bytes(document.render_markdown(blocks).encode("utf-8"))
    paths["report_html"].write_bytes(document.render_html(blocks, out_dir, s.title).encode("utf-8"))
    for key, frame in (("summary_csv", s.summary), ("comparisons_csv", s.results)):
        text = frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")
        paths[key].write_bytes(text.encode("utf-8"))
    return paths


def publish(s: Study, client, report: Report) -> None:
    """Log the report's files under report/ of the parent run and set its description."""
    pid = report.parent_run_id
    keys = list(REPORT_FILES) + sorted(k for k in s.files if k not in REPORT_FILES)
    report.logged_artifacts = tracking.log_report_files(client, pid, [s.files[k] for k in keys])
    page = tracking.artifact_page(str(s.parent["experiment_id"]), pid, "report/report.html")
    report.description = document.description(s, page)
    tracking.set_description(client, pid, report.description)


def build_report(
    runs_df: pd.DataFrame,
    out_dir,
    client=None,
    *,
    title: str | None = None,
    loss_threshold: float | None = None,
    loss_fraction: float = DEFAULT_LOSS_FRACTION,
    ignore_params=(),
    log_artifacts: bool = True,
    alpha: float = stats.ALPHA,
    scope=None,
) -> Report:
    """Write the report of the runs in ``runs_df`` (a tracking.search_runs_frame frame) into
    ``out_dir``. A parent run in the frame (tag shallownet.role = parent) is not analysed;
    with ``log_artifacts`` it receives the files under ``report/`` and its description.
    ``client`` reads the artifacts (default: the default store); ``scope``
    (scope.Scope) says what the runs are: it titles the report and picks its claims."""
    client = client or tracking.open_store(store.default_uri())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = new_study(runs_df, ignore_params, alpha, title, scope)
    with tempfile.TemporaryDirectory(prefix="shallownet-report-") as tmp:
        curves = load_curves(client, list(s.runs["run_id"]), Path(tmp) / "curves")
        s.threshold, s.threshold_text, s.horizon = add_curve_measures(
            s.runs, curves, loss_threshold, loss_fraction
        )
        analyse(s, curves)
        s.files = draw(s, curves, client, out_dir, Path(tmp))
    s.files.update(write_documents(s, out_dir))
    report = Report(
        out_dir,
        s.files,
        s.summary,
        s.results,
        s.runs,
        s.factors,
        s.threshold,
        s.claims,
        s.flags,
        s.anova,
        None if s.parent is None else str(s.parent["run_id"]),
        order=s.order,
    )
    if log_artifacts and s.parent is not None:
        publish(s, client, report)
    return report
