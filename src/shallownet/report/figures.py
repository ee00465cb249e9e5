"""Figures of a report. matplotlib's Figure API on Agg (no pyplot state), one DPI, every
figure at least MIN_WIDTH_IN inches wide, no Software metadata: the same runs give the same
PNG bytes. Every level is drawn with its own colour, line style and marker, so curves that
coincide stay visible (and the legend names the level a curve is identical to). Levels
come in the study's order (``order``: order.study_order's {factor: levels}; without it,
runs.sort_levels order), each level's style by its place in it, the same in every figure;
every metric drawn is marked with the direction that is better (runs.marked: the same
arrows as the document's tables)."""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..record import tracking
from .fmt import num
from .runs import (
    BETTER,
    arrow_key,
    ETT,
    directed,
    marked,
    ordered_levels,
    setting_label,
    short_name,
    sort_levels,
)

FIG_DPI = 100
MIN_WIDTH_IN = 9.6  # 960 px
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
CURVE_PANELS = [
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
    ("test_accuracy", "test accuracy"),
    ("lr", "learning rate"),
]
MAX_PAIRS = 6  # factor pairs drawn in heatmaps and interaction plots
MAX_SETTINGS = 24  # panels of a per-setting figure


@contextmanager
def _style():
    import matplotlib.style

    with matplotlib.style.context("default"):
        yield


def _figure(w, h, layout="constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(w, MIN_WIDTH_IN), h), dpi=FIG_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=FIG_DPI, format="png", metadata={"Software": None})
    return path


def level_style(i: int, n_points: int = 0, n_levels: int = 1) -> dict:
    """Colour, line style and marker of the i-th level; markers spaced along a curve of
    n_points and shifted per level so that coinciding curves show every marker."""
    st = {"color": f"C{i % 10}", "ls": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)]}
    if n_points:
        step = max(1, n_points // 6)
        st["markevery"] = (min(n_points - 1, (i * step) // max(n_levels, 1)), step)
    return st


def error_bars(y, lo, hi) -> np.ndarray:
    """matplotlib's yerr (2 x n: distance down, distance up) of points ``y`` with intervals
    [lo, hi]: an interval that is missing or does not contain its point (no estimate of
    report/stats.py gives one) draws no bar (NaN), so no distance is ever negative."""
    y, lo, hi = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (y, lo, hi))
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi) & (lo <= y) & (y <= hi)
    return np.vstack([np.where(ok, y - lo, np.nan), np.where(ok, hi - y, np.nan)])


def _grid(n, ncols_max=3):
    ncols = max(1, min(ncols_max, n))
    return ncols, max(1, math.ceil(n / ncols))


# --------------------------------------------------------------------------------------
# curves


MIN_BAND_SEEDS = 3  # with 2 seeds a t band is +-12.7 sd/sqrt(2): draw the two seeds instead


def seed_band(runs, curves, mask, column):
    """Curve ``column`` of the finished runs in ``mask``: for each seed the mean over its
    runs (the settings of the other factors), then the mean and 95% t CI over the seeds
    (CI clipped to the metric's range) -> dict(x, mean, lo, hi, per_seed (epochs x seeds),
    n_seeds, n_runs) or None."""
    from scipy import stats

    sub = runs[mask & (runs["state"] == "finished")]
    per_seed, n_runs = {}, 0
    for seed in sort_levels(sub["seed"]):
        series = [
            curves[r].set_index("epoch")[column]
            for r in sub[sub["seed"] == seed]["run_id"]
            if curves.get(r) is not None and column in curves[r]
        ]
        if series:
            n_runs += len(series)
            per_seed[seed] = pd.concat(series, axis=1).mean(axis=1)
    if not per_seed:
        return None
    m = pd.concat(per_seed, axis=1).sort_index()
    m = m.where(np.isfinite(m))
    mean = m.mean(axis=1).to_numpy()
    n = m.count(axis=1).to_numpy()
    sd = m.std(axis=1, ddof=1).to_numpy()
    with np.errstate(all="ignore"):
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half[n < 2] = np.nan
    lo, hi = mean - half, mean + half
    if column.endswith("accuracy"):
        lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
    elif column.endswith("loss") or column == "lr":
        lo = np.clip(lo, 0, None)
    return {
        "x": m.index.to_numpy(dtype=np.float64),
        "mean": mean,
        "lo": lo,
        "hi": hi,
        "per_seed": m.to_numpy(),
        "n_seeds": len(per_seed),
        "n_runs": n_runs,
    }


def _spread(runs) -> str:
    n = runs.loc[runs["state"] == "finished", "seed"].nunique()
    return (
        "band: 95% t CI over seeds"
        if n >= MIN_BAND_SEEDS
        else f"thin lines: each of the {n} seeds (too few for a CI band)"
    )


def _log_subs(lo: float, hi: float) -> tuple:
    """Labelled ticks per decade of a log axis from lo to hi: 1-2-3-5 within a decade or
    so, fewer when the values span more decades (at most about 8 labels)."""
    decades = math.log10(hi / lo) if hi > lo > 0 else 0.0
    if decades < 0.5:
        return tuple(float(k) for k in range(1, 10))
    return (
        (1.0, 2.0, 3.0, 5.0)
        if decades < 1.5
        else (1.0, 2.0, 5.0)
        if decades < 2.5
        else (1.0, 3.0)
        if decades < 4
        else (1.0,)
    )


def _plain_log_axis(ax, lo: float, hi: float) -> None:
    """A log y axis whose labels are plain numbers (0.2, 0.05) at the tick label size:
    matplotlib's default labels 10^k in mathtext and the minor ticks (2x10^-1) at a bigger
    size, crowded where the range spans about a decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    ax.yaxis.set_major_locator(LogLocator(subs=_log_subs(lo, hi), numticks=50))  # no thinning
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _set_limits(ax, lo, hi, column):
    if (column.endswith("loss") or column == "lr") and lo > 0:
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.25, hi * 1.25)
        _plain_log_axis(ax, lo / 1.25, hi * 1.25)
    else:
        pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1e-3)
        ax.set_ylim(lo - pad, hi + pad)


def _levels(values, order, factor) -> list:
    """The levels of ``factor`` among ``values`` in the study's order (``order`` may be None)."""
    return ordered_levels(values, (order or {}).get(factor))


def _draw_levels(
    ax, runs, curves, factor, column, mask=None, threshold=None, legend=True, limits=True, order=None
):
    """One line per level of ``factor`` (in ``order``): the mean over seeds, with the 95% t
    band over seeds (MIN_BAND_SEEDS seeds or more) or each seed's own curve as a thin line
    (fewer). The axis limits follow the lines, not the bands (set here, or with
    limits=False returned as (lo, hi) for the caller to share between panels)."""
    levels = _levels(runs[factor], order, factor)
    drawn, lines = {}, []
    mask = pd.Series(True, index=runs.index) if mask is None else mask
    for i, lv in enumerate(levels):
        b = seed_band(runs, curves, mask & (runs[factor] == lv), column)
        if b is None:
            continue
        x, mean = b["x"], b["mean"]
        same = next((k for k, v in drawn.items() if np.array_equal(v, mean, equal_nan=True)), None)
        drawn[lv] = mean
        label = f"{lv} ({b['n_runs']} runs, {b['n_seeds']} seeds)"
        if same is not None:
            label += f" = {same}"
        st = level_style(i, len(x), len(levels))
        ax.plot(x, mean, lw=1.4, ms=4, label=label, zorder=3, **st)
        lines.append(mean)
        if column == "lr" and b["n_seeds"] > 1:
            # a schedule is a step function per run: each seed's own steps (thin) show its
            # decays, which the mean over seeds smears out; no CI band
            ax.plot(x, b["per_seed"], color=st["color"], ls="-", lw=0.6, alpha=0.6, zorder=2)
            lines.append(b["per_seed"].ravel())
        elif b["n_seeds"] >= MIN_BAND_SEEDS:
            ax.fill_between(x, b["lo"], b["hi"], color=st["color"], alpha=0.15, lw=0)
        elif b["n_seeds"] > 1:
            ax.plot(x, b["per_seed"], color=st["color"], ls=st["ls"], lw=0.6, alpha=0.5, zorder=2)
            lines.append(b["per_seed"].ravel())
    if threshold is not None and np.isfinite(threshold) and ax.has_data():
        ax.axhline(threshold, color="k", ls=(0, (2, 2)), lw=0.8, label=f"threshold {num(threshold)}")
        lines.append(np.array([threshold]))
    if legend and lines:
        ax.legend(fontsize=7, loc="best")
    v = np.concatenate([np.ravel(a) for a in lines]) if lines else np.array([])
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    if limits:
        _set_limits(ax, lo, hi, column)
    return lo, hi


def fig_curves(runs, curves, factors, threshold, path: Path, show_lr: bool, order=None) -> Path:
    """Rows: factors; columns: train loss, test loss, test accuracy (and lr) per epoch."""
    panels = CURVE_PANELS if show_lr else CURVE_PANELS[:3]
    with _style():
        fig = _figure(3.6 * len(panels), 3.0 * len(factors) + 0.5)
        axes = fig.subplots(len(factors), len(panels), squeeze=False)
        for r, f in enumerate(factors):
            for c, (col, label) in enumerate(panels):
                ax = axes[r, c]
                _draw_levels(
                    ax,
                    runs,
                    curves,
                    f,
                    col,
                    threshold=threshold if col == "train_loss" else None,
                    legend=c == 0,
                    order=order,
                )
                ax.set_title(f"{short_name(f)}: {marked(label, col)}", fontsize=9)
                ax.set_xlabel("epoch", fontsize=8)
                ax.tick_params(labelsize=7)
        what = (
            "per level: mean over seeds of each seed's average over the other factors' settings"
            if len(factors) > 1
            else "per level: mean over seeds"
        )
        lr = "; learning rate: each seed's own schedule (thin)" if show_lr else ""
        fig.suptitle(f"{what}; {_spread(runs)}{lr}; {arrow_key(c for c, _ in panels)}", fontsize=9)
        return _save(fig, path)


BY_SETTING_PANELS = [("train_loss", "train loss"), ("test_accuracy", "test accuracy")]


def fig_curves_by_setting(runs, curves, factors, factor, threshold, path: Path, order=None) -> Path:
    """Train loss and test accuracy per level of ``factor``, one pair of panels per setting
    of the other factors (mean and 95% t CI over the seeds of that setting), the settings
    in ``order``; every panel of a metric on the same y range."""
    others = [f for f in factors if f != factor]
    fin = runs[runs["state"] == "finished"]
    place = {o: {lv: i for i, lv in enumerate(_levels(runs[o], order, o))} for o in others}
    settings = sorted(
        {tuple(r[o] for o in others) for _, r in fin.iterrows()},
        key=lambda t: tuple(place[o][str(x)] for o, x in zip(others, t)),
    )
    n_all = len(settings)
    settings = settings[:MAX_SETTINGS]
    per_row = 1 if len(settings) == 1 else 2  # settings per row, each a pair of panels
    ncols, nrows = per_row * len(BY_SETTING_PANELS), math.ceil(len(settings) / per_row)
    with _style():
        fig = _figure(3.0 * ncols, 2.7 * nrows + 0.5)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(settings) * len(BY_SETTING_PANELS) :]:
            ax.set_visible(False)
        ranges = {col: [] for col, _ in BY_SETTING_PANELS}
        drawn = {col: [] for col, _ in BY_SETTING_PANELS}
        for k, s in enumerate(settings):
            mask = pd.Series(True, index=runs.index)
            for o, v in zip(others, s):
                mask &= runs[o] == v
            where = ", ".join(f"{short_name(o)}={v}" for o, v in zip(others, s))
            for c, (col, label) in enumerate(BY_SETTING_PANELS):
                ax = axes.flat[k * len(BY_SETTING_PANELS) + c]
                r = _draw_levels(
                    ax,
                    runs,
                    curves,
                    factor,
                    col,
                    mask,
                    threshold if col == "train_loss" else None,
                    legend=k == 0 and c == 0,
                    limits=False,
                    order=order,
                )
                if r is not None:
                    ranges[col].append(r)
                    drawn[col].append(ax)
                ax.set_title(f"{where}: {marked(label, col)}", fontsize=8)
                ax.set_xlabel("epoch", fontsize=8)
                ax.tick_params(labelsize=7)
        for col, _ in BY_SETTING_PANELS:  # one y range for every panel of a metric
            if ranges[col]:
                lo, hi = min(r[0] for r in ranges[col]), max(r[1] for r in ranges[col])
                for ax in drawn[col]:
                    _set_limits(ax, lo, hi, col)
        shown = "" if n_all == len(settings) else f" (the first {len(settings)} of {n_all})"
        fig.suptitle(
            f"train loss and test accuracy by {factor} within each setting of the other factors{shown}: "
            f"mean over seeds; {_spread(runs)}\n{arrow_key(c for c, _ in BY_SETTING_PANELS)}",
            fontsize=9,
        )
        return _save(fig, path)


# --------------------------------------------------------------------------------------
# final values


def fig_level_means(runs, factors, means, path: Path, what: str, order=None) -> Path:
    """Final test accuracy per level (in ``order``): every finished run as a grey dot, the
    mean with its 95% CI as a coloured point with whiskers; y axis zoomed to the data.
    ``means``: {factor: DataFrame(level, mean, ci_low, ci_high, n)}."""
    fin = runs[runs["state"] == "finished"]
    ncols, nrows = _grid(len(factors), 3)
    with _style():
        fig = _figure(3.4 * ncols, 3.4 * nrows + 0.4)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(factors) :]:
            ax.set_visible(False)
        for ax, f in zip(axes.flat, factors):
            levels = _levels(means[f]["level"], order, f)
            m = means[f].set_index(means[f]["level"].astype(str)).loc[levels].reset_index(drop=True)
            vals = []
            for i, lv in enumerate(levels):
                v = fin.loc[fin[f] == lv, "final_test_accuracy"].astype(float).to_numpy()
                v = v[np.isfinite(v)]
                jitter = np.linspace(-0.18, 0.18, len(v)) if len(v) > 1 else np.zeros(len(v))
                ax.plot(
                    i - 0.08 + jitter * 0.5, np.sort(v), ls="none", marker=".", ms=4, color="0.6", zorder=1
                )
                vals.append(v)
                row = m.iloc[i]
                err = error_bars(row["mean"], row["ci_low"], row["ci_high"])
                st = level_style(i)
                ax.errorbar(
                    [i + 0.12],
                    [row["mean"]],
                    yerr=err,
                    color=st["color"],
                    marker=st["marker"],
                    ms=6,
                    capsize=4,
                    lw=1.6,
                    zorder=3,
                )
                ax.annotate(num(row["mean"], 3), (i + 0.2, row["mean"]), fontsize=7, va="center")
            allv = np.concatenate(
                vals + [m[["ci_low", "ci_high", "mean"]].to_numpy(dtype=np.float64).ravel()]
            )
            allv = allv[np.isfinite(allv)]
            if allv.size:
                lo, hi = float(allv.min()), float(allv.max())
                pad = max(0.01, 0.08 * (hi - lo))
                ax.set_ylim(lo - pad, min(1.0 + pad / 2, hi + pad))
            if ax.get_ylim()[1] >= 1.0:
                ax.axhline(1.0, color="0.5", lw=0.6, ls=":")
            ax.set_xticks(range(len(levels)), [f"{lv}\n(n={n})" for lv, n in zip(levels, m["n"])], fontsize=7)
            ax.set_xlim(-0.6, len(levels) - 0.4)
            ax.set_xlabel(f, fontsize=8)
            ax.set_ylabel(directed("final_test_accuracy", short=False), fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
        fig.suptitle(
            f"final test accuracy per level: grey = runs, colour = {what}; {arrow_key(['final_test_accuracy'])}",
            fontsize=9,
        )
        return _save(fig, path)


def _pair_key(order, key):
    """Sort key of a comparison (factor, level_a, level_b): factor, then its two levels'
    places in the study's order (``order`` may be None)."""
    f, a, b = key
    pos = {lv: i for i, lv in enumerate((order or {}).get(f, []))}
    fi = list(order or {}).index(f) if f in (order or {}) else len(order or {})
    pa, pb = pos.get(a, len(pos)), pos.get(b, len(pos))
    return (fi, f, min(pa, pb), max(pa, pb), a, b)


def _pair_text(order, key) -> str:
    """'activation: tanh vs relu': the two levels in the study's order."""
    f, a, b = key
    levels = _levels([a, b], order, f)
    return f"{short_name(f)}: {levels[0]} vs {levels[1]}"


def fig_effects(results: pd.DataFrame, metrics, path: Path, identical=frozenset(), order=None) -> Path:
    """Forest plot of the paired comparisons, each as better level - worse level on its
    metric (the better level's name beside its marker; which way is better is in each
    panel's title), with its 95% CI (thick) and the Bonferroni-level CI (thin); filled
    marker = decided after Holm; comparisons with no test are labelled (identical arms, no
    difference). Rows in the study's order (``order``), each pair named in that order."""
    from matplotlib.ticker import MaxNLocator

    rows = results[results["where"] == ""]
    labels = []
    for _, r in rows[rows["metric"] == metrics[0]].iterrows():
        labels.append((r["factor"], r["level_a"], r["level_b"]))
    labels.sort(key=lambda k: _pair_key(order, k))
    n = max(len(labels), 1)
    with _style():
        fig = _figure(3.2 * len(metrics), max(2.8, 0.42 * n + 1.4))
        axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
        for ax, m in zip(axes, metrics):
            sub = rows[rows["metric"] == m].set_index(["factor", "level_a", "level_b"])
            for y, key in enumerate(labels):
                if key not in sub.index:
                    continue
                r = sub.loc[key]
                # better - worse: flip A - B where B is the better level of this metric
                flip = (r["mean_diff"] < 0) if BETTER[m] == "higher" else (r["mean_diff"] > 0)
                sign = -1.0 if flip else 1.0
                better = key[2] if flip else key[1]
                fi = sorted({k[0] for k in labels}).index(key[0])
                color = f"C{fi % 10}"
                if np.isfinite(r["adj_ci_low"]):
                    ax.plot([sign * r["adj_ci_low"], sign * r["adj_ci_high"]], [y, y], color=color, lw=0.8)
                if np.isfinite(r["ci_low"]):
                    ax.plot(
                        [sign * r["ci_low"], sign * r["ci_high"]],
                        [y, y],
                        color=color,
                        lw=3,
                        solid_capstyle="butt",
                    )
                if np.isfinite(r["mean_diff"]):
                    ax.plot(
                        [sign * r["mean_diff"]],
                        [y],
                        marker=MARKERS[fi % len(MARKERS)],
                        ms=6,
                        color=color,
                        mfc=color if r["holm_reject"] else "white",
                        zorder=3,
                    )
                    if r["mean_diff"] != 0:
                        ax.annotate(
                            f"{better} better",
                            (sign * r["mean_diff"], y),
                            xytext=(0, -9),
                            textcoords="offset points",
                            fontsize=6,
                            color="0.3",
                            ha="center",
                        )
                if r["n_pairs"] >= 2 and r["sd_diff"] == 0 and r["mean_diff"] == 0:
                    why = "identical arms" if (key[0], frozenset(key[1:])) in identical else "no difference"
                    ax.annotate(
                        why,
                        (r["mean_diff"], y),
                        xytext=(6, 4),
                        textcoords="offset points",
                        fontsize=7,
                        color="0.3",
                    )
            ax.axvline(0, color="k", lw=0.8, ls="--")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # labels apart on a narrow panel
            ax.set_title(
                f"{directed(m, short=False)}{' (restricted)' if m == ETT else ''}\n({BETTER[m]} is better)",
                fontsize=9,
            )
            ax.set_xlabel("better - worse" + (" (epochs)" if m == ETT else ""), fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].set_yticks(range(len(labels)), [_pair_text(order, k) for k in labels], fontsize=7)
        axes[0].set_ylim(len(labels) - 0.5, -0.5)
        fig.suptitle(
            "paired differences better - worse: thick = 95% CI, thin = Bonferroni-level CI, "
            "filled = Holm-adjusted p < alpha",
            fontsize=9,
        )
        return _save(fig, path)


def _pairs(factors):
    return list(itertools.combinations(factors, 2))[:MAX_PAIRS]


def fig_heatmap(runs, factors, path: Path, order=None) -> Path:
    """Mean final test accuracy per pair of factors (over the remaining factors and the
    seeds), one colour scale for every panel; rows and columns in ``order``."""
    fin = runs[runs["state"] == "finished"]
    pairs = _pairs(factors)
    cells = []
    for fa, fb in pairs:
        la, lb = _levels(runs[fa], order, fa), _levels(runs[fb], order, fb)
        mean = np.full((len(la), len(lb)), np.nan)
        cnt = np.zeros((len(la), len(lb)), dtype=int)
        for i, a in enumerate(la):
            for j, b in enumerate(lb):
                v = fin[(fin[fa] == a) & (fin[fb] == b)]["final_test_accuracy"].astype(float)
                v = v[np.isfinite(v)]
                cnt[i, j] = len(v)
                if len(v):
                    mean[i, j] = float(v.mean())
        cells.append((fa, fb, la, lb, mean, cnt))
    allm = np.concatenate([c[4].ravel() for c in cells])
    vmin, vmax = (float(np.nanmin(allm)), float(np.nanmax(allm))) if np.isfinite(allm).any() else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    ncols, nrows = _grid(len(pairs), 3)
    with _style():
        fig = _figure(3.9 * ncols + 1.0, 3.4 * nrows + 0.4)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(pairs) :]:
            ax.set_visible(False)
        im = None
        for ax, (fa, fb, la, lb, mean, cnt) in zip(axes.flat, cells):
            im = ax.imshow(np.ma.masked_invalid(mean), cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
            for i in range(len(la)):
                for j in range(len(lb)):
                    bright = np.isfinite(mean[i, j]) and (mean[i, j] - vmin) / (vmax - vmin) > 0.6
                    ax.text(
                        j,
                        i,
                        f"{num(mean[i, j], 3)}\n(n={cnt[i, j]})",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="k" if bright else "w",
                    )
            ax.set_xticks(range(len(lb)), lb, fontsize=7)
            ax.set_yticks(range(len(la)), la, fontsize=7)
            ax.set_xlabel(fb, fontsize=8)
            ax.set_ylabel(fa, fontsize=8)
        fig.colorbar(
            im,
            ax=[a for a in axes.flat if a.get_visible()],
            label="mean " + directed("final_test_accuracy", short=False),
            shrink=0.9,
        )
        fig.suptitle(
            "mean final test accuracy per cell (over the remaining factors and the "
            f"seeds); one colour scale for all panels; {arrow_key(['final_test_accuracy'])}",
            fontsize=9,
        )
        return _save(fig, path)


def fig_interactions(factors, emms, notes, metrics, path: Path, order=None) -> Path:
    """Interaction plots: for each pair of factors (A, B), the marginal means of A's levels
    (x) for each level of B (lines), with 95% CIs, levels in ``order``.
    ``emms[(metric, fa, fb)]`` is a factorial.marginal_means frame; ``notes[metric]`` says
    why a model is missing."""
    pairs = _pairs(factors)
    with _style():
        fig = _figure(3.6 * len(pairs), 3.1 * len(metrics) + 0.5)
        axes = fig.subplots(len(metrics), len(pairs), squeeze=False)
        for r, m in enumerate(metrics):
            for c, (fa, fb) in enumerate(pairs):
                ax = axes[r, c]
                e = emms.get((m, fa, fb))
                la, lb = (
                    (_levels(e[fa], order, fa), _levels(e[fb], order, fb))
                    if e is not None and len(e)
                    else ([], [])
                )
                if not la:
                    ax.text(
                        0.5,
                        0.5,
                        f"no model: {notes.get(m, '')}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        transform=ax.transAxes,
                        wrap=True,
                    )
                for j, b in enumerate(lb):
                    sub = e[e[fb] == b].set_index(fa).reindex(la)
                    x = np.arange(len(la)) + (j - (len(lb) - 1) / 2) * 0.06
                    y = sub["emm"].to_numpy(dtype=np.float64)
                    err = error_bars(y, sub["ci_low"], sub["ci_high"])
                    st = level_style(j)
                    ax.errorbar(
                        x,
                        y,
                        yerr=err,
                        capsize=3,
                        lw=1.3,
                        ms=5,
                        label=f"{b}",
                        **{k: st[k] for k in ("color", "ls", "marker")},
                    )
                if la:
                    ax.set_xticks(range(len(la)), la, fontsize=7)
                    ax.legend(title=short_name(fb), fontsize=7, title_fontsize=7)
                ax.set_xlabel(fa, fontsize=8)
                ax.set_ylabel(directed(m) + " (marginal mean)", fontsize=8)
                ax.tick_params(axis="y", labelsize=7)
        fig.suptitle(
            "interactions: model-based marginal means with 95% CIs (over the "
            f"remaining factors and seeds); non-parallel lines = interaction\n{arrow_key(metrics)}",
            fontsize=9,
        )
        return _save(fig, path)


# --------------------------------------------------------------------------------------
# decision boundaries and activations


def median_run(runs, factor, level):
    """The representative run of a level: among its finished runs (all settings of the
    other factors and seeds), the median one in the order of final test accuracy, ties
    (a small test set gives few distinct accuracies) ordered by final test loss, higher
    loss first: the lower one of the two middle runs for an even count; exact ties by the
    table's order -> (row, n)."""
    sub = runs[runs[factor] == level]
    fin = sub[(sub["state"] == "finished") & np.isfinite(sub["final_test_accuracy"].astype(float))]
    pool = fin if len(fin) else sub
    acc = pool["final_test_accuracy"].astype(float).to_numpy() if len(fin) else np.zeros(len(pool))
    loss = (
        pool["final_test_loss"].astype(float).to_numpy()
        if "final_test_loss" in pool and len(fin)
        else np.zeros(len(pool))
    )
    loss = np.where(np.isfinite(loss), loss, np.inf)
    order = sorted(range(len(pool)), key=lambda i: (acc[i], -loss[i], i))
    return pool.iloc[order[(len(order) - 1) // 2]], len(pool)


BOUNDARY_TITLE_PX = 56  # a gap and three lines of 7 pt text above each image
BOUNDARY_SUPTITLE_PX = 30
BOUNDARY_MIN_PX = 300  # the per-run plot is 320 px high


def _boundary_image(client, run_id, dst: Path):
    import matplotlib.image as mpimg

    p = tracking.download_artifact(client, run_id, "plots/decision_boundary.png", dst)
    if p is None:
        return None
    try:
        return mpimg.imread(p)
    except Exception:
        return None


def fig_boundaries(runs, factors, client, dst: Path, path: Path, order=None) -> Path:
    """The decision boundary of each level's median run (rows: factors), each run's own
    PNG pasted at its own pixel size (not resampled: its text stays sharp; one under
    BOUNDARY_MIN_PX high is enlarged by a whole factor), on a grid of cells at least
    MIN_WIDTH_IN wide in all; each row's levels in ``order``."""
    cells = []  # (row, col, title, image or None)
    for r, f in enumerate(factors):
        others = [g for g in factors if g != f]
        for c, lv in enumerate(_levels(runs[f], order, f)):
            run, n = median_run(runs, f, lv)
            where = setting_label(run, others)
            title = (
                f"{short_name(f)}={lv}\n{where + ', ' if where else ''}seed "
                f"{run['seed']}\n{directed('final_test_accuracy')} {num(run['final_test_accuracy'], 3)} "
                f"(median of {n})"
            )
            if run["state"] != "finished":
                title += f" ({run['state']})"
            img = _boundary_image(client, run["run_id"], dst)
            if img is not None and img.shape[0] < BOUNDARY_MIN_PX:  # a small plot: whole pixels bigger
                k = math.ceil(BOUNDARY_MIN_PX / img.shape[0])
                img = np.repeat(np.repeat(img, k, axis=0), k, axis=1)
            cells.append((r, c, title, img))
    ncols = max(c for _, c, _, _ in cells) + 1
    nrows = len(factors)
    sizes = [img.shape[:2] for *_, img in cells if img is not None]
    img_h = max((h for h, _ in sizes), default=300)
    img_w = max((w for _, w in sizes), default=360)
    cell_w = max(img_w + 20, math.ceil(MIN_WIDTH_IN * FIG_DPI / ncols))
    cell_h = img_h + BOUNDARY_TITLE_PX
    W, H = ncols * cell_w, nrows * cell_h + BOUNDARY_SUPTITLE_PX
    with _style():
        fig = _figure(W / FIG_DPI, H / FIG_DPI, layout=None)
        for r, c, title, img in cells:
            x0 = c * cell_w
            top = BOUNDARY_SUPTITLE_PX + r * cell_h  # from the figure's top, in pixels
            fig.text(
                (x0 + cell_w / 2) / W,
                1 - (top + 10) / H,
                title,
                ha="center",
                va="top",
                fontsize=7,
            )
            if img is None:
                fig.text(
                    (x0 + cell_w / 2) / W,
                    1 - (top + BOUNDARY_TITLE_PX + img_h / 2) / H,
                    "no decision_boundary.png",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
                continue
            h, w = img.shape[:2]
            left = x0 + (cell_w - w) // 2
            bottom = H - (top + BOUNDARY_TITLE_PX + h)
            ax = fig.add_axes((left / W, bottom / H, w / W, h / H))
            ax.set_axis_off()
            ax.imshow(img, interpolation="none", aspect="auto")
        fig.suptitle(
            "decision boundary of the median-accuracy run of each level", fontsize=9, y=1 - 6 / H, va="top"
        )
        return _save(fig, path)


def fig_activations(levels, alpha: float, path: Path) -> Path:
    """The activation functions (solid) and derivatives (dashed) of the study's levels."""
    import functools

    from shallownet.model import ACTIVATIONS, DERIVATIVES
    from shallownet.model._base import inplace_leaky_relu_derivative, leaky_relu

    z = np.linspace(-5.0, 5.0, 1001)  # (1001,)
    names = [lv for lv in levels if lv in ACTIVATIONS]
    with _style():
        fig = _figure(3.4 * len(names), 3.2)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names):
            if name == "leaky_relu":
                act = functools.partial(leaky_relu, alpha=alpha)
                der = functools.partial(inplace_leaky_relu_derivative, alpha=alpha)
            else:
                act, der = ACTIVATIONS[name], DERIVATIVES[name]
            a = act(z)
            d = der(a, np.ones_like(z))
            ax.plot(z, a, color="C0", lw=1.5, label=f"{name}(z)")
            ax.plot(z, d, color="C1", lw=1.5, ls="--", label=f"{name}'(z)")
            ax.axhline(0, color="0.7", lw=0.5)
            ax.axvline(0, color="0.7", lw=0.5)
            ax.set_title(name + (f" (alpha={num(alpha)})" if name == "leaky_relu" else ""), fontsize=9)
            ax.set_xlabel("z")
            ax.legend(fontsize=8, loc="upper left")
        return _save(fig, path)
