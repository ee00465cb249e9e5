"""Every figure lists the levels in the study's order (not alphabetically), each level in
the same colour in every figure, and marks which way is better on every metric it draws
(issue 19: "the direction of better marked per metric in every table and figure, levels in
the study's order")."""

import numpy as np
import pandas as pd
import pytest
from test_report import EPOCHS, curves_frame

from shallownet.report import factorial, figures, stats

ACT, WIDTH = "activation.name", "model.hidden_sizes"
# the study's order: tanh, relu, leaky_relu (alphabetically leaky_relu, relu, tanh) and
# [64] before [16] (numerically [16] first)
ORDER = {ACT: ["tanh", "relu", "leaky_relu"], WIDTH: ["[64]", "[16]"]}
ALPHABETICAL = {ACT: ["leaky_relu", "relu", "tanh"], WIDTH: ["[16]", "[64]"]}
SHIFT = {"tanh": 0.0, "relu": 0.1, "leaky_relu": 0.2, "[64]": 0.0, "[16]": 0.05}


def study():
    """activation {tanh, relu, leaky_relu} x width {[64], [16]} x seeds 0..2, each cell's
    loss curve and accuracies at its own level -> (run table, curves)."""
    rows, curves = [], {}
    noise = iter(np.random.default_rng(19).normal(0, 0.005, 2 * 18))  # a model with residuals
    for a in ORDER[ACT]:
        for w in ORDER[WIDTH]:
            for s in range(3):
                rid = f"{a}-{w}-{s}"
                loss = (0.7 - 0.3 * np.linspace(0, 1, EPOCHS)) * (1 + SHIFT[a] + SHIFT[w]) + 0.01 * s
                f = curves_frame(loss, np.where(np.arange(EPOCHS) < 10 + 5 * s, 0.5, 0.25))
                curves[rid] = f
                rows.append(
                    {
                        "run_id": rid,
                        ACT: a,
                        WIDTH: w,
                        "seed": str(s),
                        "state": "finished",
                        "final_test_accuracy": 0.95 - SHIFT[a] / 4 - SHIFT[w] / 4 + next(noise),
                        "final_test_loss": float(f["test_loss"].iloc[-1]),
                        "final_train_loss": float(f["train_loss"].iloc[-1]) + next(noise),
                    }
                )
    return pd.DataFrame(rows), curves


def legend_levels(ax):
    """The level names of an Axes' legend entries, in the legend's order."""
    _, labels = ax.get_legend_handles_labels()
    return [lb.split(" ")[0] for lb in labels if not lb.startswith("threshold")]


def tick_levels(labels):
    return [t.get_text().split("\n")[0] for t in labels]


def colour_of(lines, level):
    return next(ln.get_color() for ln in lines if ln.get_label().split(" ")[0] == level)


def test_curves_in_the_study_order_with_the_better_direction(tmp_path, drawn):
    runs, curves = study()
    figures.fig_curves(runs, curves, [ACT, WIDTH], 0.35, tmp_path / "c.png", True, ORDER)
    axes = np.array(drawn[0].axes).reshape(2, 4)
    assert legend_levels(axes[0, 0]) == ORDER[ACT]
    assert legend_levels(axes[1, 0]) == ORDER[WIDTH]
    assert [ax.get_title() for ax in axes[0]] == [
        "activation: train loss ↓",
        "activation: test loss ↓",
        "activation: test accuracy ↑",
        "activation: learning rate",  # no better direction
    ]
    assert drawn[0].get_suptitle().endswith("; ↑ higher is better, ↓ lower is better")
    # the i-th level of the study's order in the i-th colour
    assert [colour_of(axes[0, 0].get_lines(), lv) for lv in ORDER[ACT]] == ["C0", "C1", "C2"]
    figures.fig_curves(runs, curves, [ACT], 0.35, tmp_path / "a.png", False)  # no order given
    assert legend_levels(drawn[1].axes[0]) == ALPHABETICAL[ACT]


def test_curves_by_setting_in_the_study_order(tmp_path, drawn):
    runs, curves = study()
    figures.fig_curves_by_setting(runs, curves, [ACT, WIDTH], ACT, 0.35, tmp_path / "s.png", ORDER)
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert legend_levels(axes[0]) == ORDER[ACT]
    # the settings of the other factor in the study's order: [64] first
    assert [ax.get_title() for ax in axes] == [
        "hidden_sizes=[64]: train loss ↓",
        "hidden_sizes=[64]: test accuracy ↑",
        "hidden_sizes=[16]: train loss ↓",
        "hidden_sizes=[16]: test accuracy ↑",
    ]


def level_means_of(runs, factor):
    """fig_level_means' input, rows alphabetical (as stats.summarize gives them)."""
    g = runs.groupby(factor)["final_test_accuracy"]
    m = g.mean()
    return pd.DataFrame(
        {"level": m.index, "mean": m.to_numpy(), "ci_low": m - 0.01, "ci_high": m + 0.01, "n": g.size()}
    ).reset_index(drop=True)


def test_level_means_in_the_study_order_with_the_better_direction(tmp_path, drawn):
    runs, curves = study()
    means = {f: level_means_of(runs, f) for f in (ACT, WIDTH)}
    assert list(means[ACT]["level"]) == ALPHABETICAL[ACT]
    figures.fig_level_means(runs, [ACT, WIDTH], means, tmp_path / "m.png", "mean", ORDER)
    ax_act, ax_width = drawn[0].axes[:2]
    assert tick_levels(ax_act.get_xticklabels()) == ORDER[ACT]
    assert tick_levels(ax_width.get_xticklabels()) == ORDER[WIDTH]
    assert ax_act.get_ylabel() == "final test accuracy ↑"
    assert drawn[0].get_suptitle().endswith("; ↑ higher is better")
    # the coloured point at x = i + 0.12 is level i's mean, in level i's colour
    points = [ln for ln in ax_act.get_lines() if ln.get_marker() in figures.MARKERS]  # not caps
    for i, lv in enumerate(ORDER[ACT]):
        (pt,) = [ln for ln in points if ln.get_xdata()[0] == pytest.approx(i + 0.12)]
        want = runs.loc[runs[ACT] == lv, "final_test_accuracy"].mean()
        assert pt.get_ydata()[0] == pytest.approx(want) and pt.get_color() == f"C{i}"
    # the same colour as the level's curves
    figures.fig_curves(runs, curves, [ACT], 0.35, tmp_path / "c.png", False, ORDER)
    curve_lines = drawn[1].axes[0].get_lines()
    assert [colour_of(curve_lines, lv) for lv in ORDER[ACT]] == ["C0", "C1", "C2"]


def test_heatmap_rows_and_columns_in_the_study_order(tmp_path, drawn):
    runs, _ = study()
    figures.fig_heatmap(runs, [ACT, WIDTH], tmp_path / "h.png", ORDER)
    ax = drawn[0].axes[0]
    assert tick_levels(ax.get_yticklabels()) == ORDER[ACT]
    assert tick_levels(ax.get_xticklabels()) == ORDER[WIDTH]
    cells = ax.get_images()[0].get_array()
    for i, a in enumerate(ORDER[ACT]):  # the numbers move with their labels
        for j, w in enumerate(ORDER[WIDTH]):
            want = runs.loc[(runs[ACT] == a) & (runs[WIDTH] == w), "final_test_accuracy"].mean()
            assert cells[i, j] == pytest.approx(want)
    colourbar = drawn[0].axes[-1]
    assert colourbar.get_ylabel() == "mean final test accuracy ↑"


def test_interactions_in_the_study_order_with_the_better_direction(tmp_path, drawn):
    runs, _ = study()
    metrics = ["final_test_accuracy", "final_train_loss"]
    emms = {(m, ACT, WIDTH): factorial.marginal_means(runs, [ACT, WIDTH], m, [ACT, WIDTH]) for m in metrics}
    figures.fig_interactions([ACT, WIDTH], emms, {}, metrics, tmp_path / "i.png", ORDER)
    acc, loss = drawn[0].axes[:2]
    assert tick_levels(acc.get_xticklabels()) == ORDER[ACT]
    assert acc.get_legend_handles_labels()[1] == ORDER[WIDTH]
    assert acc.get_ylabel() == "test acc ↑ (marginal mean)"
    assert loss.get_ylabel() == "train loss ↓ (marginal mean)"
    # the [64] line's points are the marginal means of tanh, relu, leaky_relu in that order
    e = emms[("final_test_accuracy", ACT, WIDTH)]
    want = [float(e[(e[ACT] == a) & (e[WIDTH] == "[64]")]["emm"].iloc[0]) for a in ORDER[ACT]]
    line = next(ln for ln in acc.get_lines() if len(ln.get_xdata()) == 3 and ln.get_color() == "C0")
    assert list(line.get_ydata()) == pytest.approx(want)


def test_decision_boundaries_in_the_study_order(tmp_path, drawn, monkeypatch):
    import PIL.Image

    PIL.Image.fromarray(np.zeros((320, 384, 3), dtype=np.uint8)).save(tmp_path / "child.png")
    monkeypatch.setattr(figures.tracking, "download_artifact", lambda *a: tmp_path / "child.png")
    runs, _ = study()
    figures.fig_boundaries(runs, [ACT, WIDTH], None, tmp_path, tmp_path / "b.png", ORDER)
    titles = [t for t in drawn[0].texts if t.get_text().startswith("activation=")]
    titles.sort(key=lambda t: t.get_position()[0])  # left to right
    assert [t.get_text().split("\n")[0] for t in titles] == [f"activation={lv}" for lv in ORDER[ACT]]
    assert all("test acc ↑ " in t.get_text() for t in titles)


def test_effects_rows_in_the_study_order_with_the_better_direction(tmp_path, drawn):
    runs, _ = study()
    metrics = ["final_test_accuracy", "final_train_loss"]
    family = stats.pairwise(runs, [ACT, WIDTH], metrics)  # pairs in alphabetical order
    results = stats.evaluate_comparisons(runs, family, [ACT, WIDTH])
    figures.fig_effects(results, metrics, tmp_path / "e.png", order=ORDER)
    acc, loss = drawn[0].axes
    assert [t.get_text() for t in acc.get_yticklabels()] == [
        "activation: tanh vs relu",
        "activation: tanh vs leaky_relu",
        "activation: relu vs leaky_relu",
        "hidden_sizes: [64] vs [16]",
    ]
    assert acc.get_title() == "final test accuracy ↑\n(higher is better)"
    assert loss.get_title() == "final train loss ↓\n(lower is better)"
