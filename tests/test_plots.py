"""The two run plots: identical inputs give identical PNG bytes, whatever the process drew before.

``shallownet.plots`` keeps one figure per plot kind per process and only puts each run's data
into it, so these tests draw different runs in a row in one process and compare the bytes with
those of the same run drawn first thing in a fresh process, and the pixels with those of a new
figure made for the run alone (the way the plots were drawn before figures were reused).
"""

import copy
import dataclasses
import hashlib
import io
import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from shallownet import datasets, plots
from shallownet.fit import Curves, _recorder
from shallownet.model import MLP, train

# name -> (dataset config, epochs, hidden activation): 3 features (the title's extra line; the
# first train point is class 1), the 4 XOR points that are both train and test set (no test
# markers), and 2 features with a single epoch; D is C with feature 2 moved by 1e6
RUNS = {
    "A": ({"name": "classification", "n_samples": 200}, 300, "tanh"),
    "B": ({"name": "xor", "test_size": None}, 400, "relu"),
    "C": ({"name": "quadrant", "n_samples": 120}, 1, "tanh"),
}


def make_run(name):
    """(curves, net, split) of a short training, curves as the harness records them."""
    if name == "D":
        return shifted(make_run("C"), np.array([0.0, 1e6]))
    ds, epochs, activation = RUNS[name]
    split = datasets.load(ds)
    net = MLP([split.X_train.shape[1], 6, 1], activation, "sigmoid", seed=3)
    curves = Curves(epochs)
    curves.allocate()
    train(
        net,
        split.X_train,
        split.y_train,
        epochs=epochs,
        lr=0.5,
        loss="bce",
        seed=3,
        callback=_recorder(net, split, "bce", curves),
    )
    return curves.done(), net, split


def shifted(run, offset):
    """``run`` with its features moved by ``offset`` and its net with them: the same plot but for
    the tick labels (a large offset shows as an offset text such as "+1e6" by the axis)."""
    curves, net, split = run
    net = copy.deepcopy(net)
    net.biases[0] = net.biases[0] - offset @ net.weights[0]
    split = dataclasses.replace(split, X_train=split.X_train + offset, X_test=split.X_test + offset)
    return curves, net, split


def title(name):
    """D's title is long enough to overlap the offset text, which matplotlib then moves it off."""
    return f"run {name}" + (" with a title as wide as the whole plot" if name == "D" else "")


def draw(name, out, run):
    """Both plots of ``run`` (named ``name``) into ``out``; returns {plot: PNG bytes}."""
    curves, net, split = run
    out = Path(out)
    loss, boundary = out / f"{name}_loss.png", out / f"{name}_boundary.png"
    plots.loss_curve(curves, loss, title(name))
    plots.decision_boundary(
        net,
        split.X_train,
        split.y_train,
        split.X_test,
        split.y_test,
        boundary,
        title(name),
        same_points=split.test_is_train,
    )
    return {"loss": loss.read_bytes(), "boundary": boundary.read_bytes()}


def digests(pngs):
    return {k: hashlib.sha256(v).hexdigest() for k, v in pngs.items()}


def pixels(png):
    return np.asarray(PIL.Image.open(io.BytesIO(png)))


def from_scratch_loss_curve(curves, path, title):
    """loss_curve as drawn before the figures were reused: a new Figure per call."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullLocator

    fig = Figure(figsize=(8, 3.2))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.88, wspace=0.3)
    ax1, ax2 = fig.subplots(1, 2)
    for key, style in (("train_loss", "-"), ("test_loss", "--")):
        ax1.plot(curves["epoch"], curves[key], style, label=key)
    ax1.set_yscale("log")
    subs = plots._log_subs(curves["train_loss"], curves["test_loss"])
    ax1.yaxis.set_major_locator(LogLocator(subs=subs))
    ax1.yaxis.set_major_formatter(plots.PLAIN)
    ax1.yaxis.set_minor_locator(NullLocator())
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper right")
    ax1.grid(True, alpha=0.3)
    for key, style in (("train_accuracy", "-"), ("test_accuracy", "--")):
        ax2.plot(curves["epoch"], curves[key], style, label=key)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.legend(loc="lower right")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=9)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=80)


def from_scratch_decision_boundary(net, X_train, y_train, X_test, y_test, path, title, same_points):
    """decision_boundary as drawn before the figures were reused: a new Figure per call."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    X_all = np.vstack([X_train, X_test])
    xx, yy, p = plots._probability_grid(net, X_all)
    fig = Figure(figsize=(4.8, 4))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.87)
    ax = fig.subplots()
    cs = ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(
        X_train[:, 0],
        X_train[:, 1],
        c=y_train,
        cmap="RdBu_r",
        edgecolors="k",
        s=18,
        vmin=0,
        vmax=1,
        label="train",
    )
    if not same_points:
        ax.scatter(
            X_test[:, 0],
            X_test[:, 1],
            c=y_test,
            cmap="RdBu_r",
            edgecolors="k",
            s=18,
            marker="s",
            vmin=0,
            vmax=1,
            label="test",
        )
    fig.colorbar(cs, ax=ax, label="P(class 1)")
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    extra = "\n(other features at their median)" if X_all.shape[1] > 2 else ""
    ax.set_title(title + extra, fontsize=8)
    ax.legend(loc="upper right", fontsize=7)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=80)


@pytest.fixture(scope="module")
def runs():
    return {name: make_run(name) for name in [*RUNS, "D"]}


def test_identical_input_identical_bytes(runs, tmp_path):
    assert draw("A", tmp_path, runs["A"]) == draw("A", tmp_path, runs["A"])


def test_no_run_leaks_into_the_next(runs, tmp_path):
    """A, B, C, D, A, C, B, D in one process: every repeat gives the first drawing's bytes."""
    seen = {}
    for name in "ABCDACBD":
        pngs = draw(name, tmp_path, runs[name])
        assert seen.setdefault(name, pngs) == pngs, name
    for x, y in itertools.combinations("ABCD", 2):
        for kind in ("loss", "boundary"):
            assert seen[x][kind] != seen[y][kind], (x, y, kind)


FRESH = """
import json, pickle, sys
sys.path.insert(0, {tests!r})
import test_plots
runs = pickle.load(open({runs!r}, "rb"))
print(json.dumps({{name: test_plots.digests(test_plots.draw(name, {out!r}, runs[name]))
                  for name in {names!r}}}))
"""


def fresh_process_digests(runs, names, tmp_path):
    """Digests of the plots of ``names`` drawn in that order by a new Python process."""
    (tmp_path / "runs.pkl").write_bytes(pickle.dumps(runs))
    (tmp_path / "fresh").mkdir()
    code = FRESH.format(
        tests=str(Path(__file__).parent),
        runs=str(tmp_path / "runs.pkl"),
        out=str(tmp_path / "fresh"),
        names=list(names),
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_a_run_drawn_after_others_equals_it_drawn_in_a_fresh_process(runs, tmp_path):
    """B drawn here after A equals B drawn first in a new process; A drawn there after B and C
    equals A here."""
    draw("A", tmp_path, runs["A"])
    here = {name: digests(draw(name, tmp_path, runs[name])) for name in "BA"}
    fresh = fresh_process_digests(runs, "BCA", tmp_path)
    assert fresh["B"] == here["B"]
    assert fresh["A"] == here["A"]


def test_reused_figures_draw_what_new_figures_draw(runs, tmp_path):
    """Pixel for pixel, each run in a row (A, B, C, D, A) as a new figure of its own draws it:
    its limits, ticks, legend marker colours (the first point's), title and test markers."""
    for name in "ABCDA":
        curves, net, split = runs[name]
        pngs = draw(name, tmp_path, runs[name])
        from_scratch_loss_curve(curves, tmp_path / "ref_loss.png", title(name))
        from_scratch_decision_boundary(
            net,
            split.X_train,
            split.y_train,
            split.X_test,
            split.y_test,
            tmp_path / "ref_boundary.png",
            title(name),
            split.test_is_train,
        )
        for kind in ("loss", "boundary"):
            expected = pixels((tmp_path / f"ref_{kind}.png").read_bytes())  # RGBA, opaque
            assert (expected[..., 3] == 255).all()
            np.testing.assert_array_equal(pixels(pngs[kind]), expected[..., :3], err_msg=f"{name} {kind}")


def test_figure_content(runs, tmp_path):
    pngs = draw("A", tmp_path, runs["A"])
    loss, boundary = pixels(pngs["loss"]), pixels(pngs["boundary"])
    assert loss.shape == (256, 640, 3)  # 8 x 3.2 in at 80 dpi, RGB
    assert boundary.shape == (320, 384, 3)  # 4.8 x 4 in
    for png in pngs.values():
        assert png.startswith(b"\x89PNG") and b"Software" not in png  # no version string
    # content: not blank, and the data shows (other curves, another title: other bytes)
    assert (loss[..., :3] < 128).any() and (boundary[..., :3] < 128).any()
    curves, net, split = runs["A"]
    other = dict(curves, test_loss=curves["test_loss"] * 1.5)
    plots.loss_curve(other, tmp_path / "other.png", "run A")
    assert (tmp_path / "other.png").read_bytes() != pngs["loss"]
    plots.loss_curve(curves, tmp_path / "other.png", "run A2")
    assert (tmp_path / "other.png").read_bytes() != pngs["loss"]
    plots.loss_curve(curves, tmp_path / "same.png", "run A")
    assert (tmp_path / "same.png").read_bytes() == pngs["loss"]


def test_shortcuts_give_the_pixels_of_the_plain_way(runs, tmp_path):
    """Pasted sprites (colorbar, accuracy tick labels) and axis labels kept in place: drawing the
    figure the plain way afterwards gives the same image (D: a y offset text, drawn plainly)."""
    for name in "CABD":  # C: the process has drawn at least one figure of each kind before
        pngs = draw(name, tmp_path, runs[name])
        for kind, key in (("loss", "loss_curve"), ("boundary", "decision_boundary")):
            f = plots._FIGURES[key]
            assert f["shortcuts"] or name == "C"
            for s in f["shortcuts"] or []:
                s.off()
            try:
                f["canvas"].draw()
                plain = np.asarray(f["canvas"].buffer_rgba())[..., :3].copy()
            finally:
                for s in f["shortcuts"] or []:
                    s.on()
            np.testing.assert_array_equal(pixels(pngs[kind]), plain, err_msg=f"{name} {kind}")


@pytest.mark.parametrize("overlap", [False, True])
def test_sprite_is_drawn_for_real_where_something_else_reaches_it(overlap):
    """_render pastes a sprite only over a still blank rectangle: the result equals drawing the
    artist in both cases."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1), dpi=80)
    canvas = FigureCanvasAgg(fig)
    other = fig.text(0.45 if overlap else 0.05, 0.5, "other text", fontsize=12)
    fixed = fig.text(0.6, 0.5, "fixed", fontsize=12)  # drawn after `other`
    canvas.draw()
    expected = np.asarray(canvas.buffer_rgba()).copy()
    sprite = plots._Sprite(canvas, fixed.draw, fixed.set_visible)
    assert not fixed.get_visible()
    other.set_text("other text")  # a new run's data
    plots._render({"canvas": canvas, "shortcuts": [sprite]})
    np.testing.assert_array_equal(np.asarray(canvas.buffer_rgba()), expected)
    assert not fixed.get_visible()
