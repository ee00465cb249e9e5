"""The two per-run figures, drawn with matplotlib's object API on the Agg canvas (no window).

A sweep draws both figures for every run in the same worker processes, and most of a plot's
time went into making figures, axes, ticks and texts that are the same for every run, and
into laying out and rendering the parts that look the same in every run. So:

* each process keeps ONE figure per plot kind (``_FIGURES``), made on first use, and a call
  only puts this run's data into it: line data, contour sets, scatter points, titles, limits
  and legend marker colours. Everything a call sets is set on every call, so nothing of one
  run can show in the next: the bytes of a plot depend only on its inputs;
* from the second figure of a kind a process draws on, *shortcuts* skip work whose result
  is the same in every run: parts drawn once and pasted (`_Sprite`), axis labels kept
  where matplotlib puts them. Each one is checked for the run at hand, and a run it does not
  fit is drawn the plain way (`_render`).

The pixels are those of a new figure made for the run alone (tests/test_plots.py checks this,
and that a run's bytes do not depend on what the process drew before).
"""

import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.offsetbox import DrawingArea, TextArea
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

DPI = 80
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")  # 0.2, 0.5, 1: no mathtext to lay out per tick
LEVELS = np.linspace(0, 1, 11)  # P(class 1) bands of the decision boundary
CMAP = "RdBu_r"
GRID = 150  # points per side of the decision-boundary grid

_FIGURES = {}  # plot kind -> its figure's parts, one per process (see the module docstring)


def _figure(kind, build, shortcuts):
    """The process's figure of ``kind``: ``build()`` on first use. Its ``shortcuts(f)`` are made
    for its second draw: they cost a few partial draws, which pays off in a sweep's workers, not
    in a process that records a single run."""
    f = _FIGURES.get(kind)
    if f is None:
        f = _FIGURES[kind] = build()
        f["shortcuts"] = None
    elif f["shortcuts"] is None:
        f["shortcuts"] = shortcuts(f)
    return f


def _render(f):
    """Draw figure ``f`` with its shortcuts and apply them; if one does not hold for this run,
    draw it again the plain way."""
    canvas, shortcuts = f["canvas"], f["shortcuts"] or []
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())  # (H, W, 4) view of the canvas
    if all(s.holds(image) for s in shortcuts):
        for s in shortcuts:
            s.apply(image)
        return
    for s in shortcuts:
        s.off()
    canvas.draw()
    for s in shortcuts:
        s.on()


def _save(canvas, path):
    """Write the rendered canvas as a PNG: RGB, the figure being opaque (its alpha channel is
    all 255), at zlib level 1, which is as small as RGBA at the default level 6 and twice as
    fast; with no text chunk (no "Software" version string), so identical inputs give identical
    bytes."""
    rgba = PIL.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    rgba.convert("RGB").save(path, format="png", dpi=(DPI, DPI), compress_level=1)


# ------------------------------------------------------------------------------- shortcuts
class _Sprite:
    """Shortcut: artists that look the same in every run, drawn once, their pixels pasted instead
    of drawing them. ``draw(renderer)`` draws them alone; ``show(bool)`` shows or hides them in
    the figure (hidden but for plain draws).

    Their box is the rectangle they touch (change over a white or over a black figure). Pasted
    over a box that nothing else of a run touched, they give the pixels that drawing them would,
    wherever they come in the drawing order. ``holds`` checks that the box is still white, which
    is enough because nothing drawn after them here paints white over white (no white fill
    reaches their box)."""

    def __init__(self, canvas, draw, show):
        renderer, patch = canvas.get_renderer(), canvas.figure.patch
        background = patch.get_facecolor()
        images = []
        for color in (background, "black"):
            renderer.clear()
            patch.set_facecolor(color)
            patch.draw(renderer)
            draw(renderer)
            images.append(np.asarray(renderer.buffer_rgba()).copy())  # (H, W, 4)
        patch.set_facecolor(background)
        over_white, over_black = images
        touched = (over_white != 255).any(2) | (over_black != (0, 0, 0, 255)).any(2)
        rows, cols = np.nonzero(touched)
        self.box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
        self.pixels = over_white[self.box]
        self.show = show
        self.on()

    def holds(self, image):
        return (image[self.box] == 255).all()

    def apply(self, image):
        image[self.box] = self.pixels

    def off(self):
        self.show(True)

    def on(self):
        self.show(False)


def _pin_label(canvas, axis):
    """Pin an axis label where matplotlib's own placement puts it, off the tick labels, so that
    a draw skips measuring every tick label once more for it. Right when the tick labels'
    extent off the axes is the same in every run (see the callers)."""
    axis.get_tightbbox(canvas.get_renderer())  # places the label, as a draw would
    label = axis.label
    axis.set_label_coords(*label.get_position(), transform=label.get_transform())


def _fixed_tick_labels(canvas, axis):
    """The tick labels and label of a y axis whose limits are fixed, hence its ticks too, as a
    `_Sprite` (its tick marks and grid lines are still drawn, under the curves)."""
    _pin_label(canvas, axis)

    def draw(renderer):
        axis.set_tick_params(left=False, gridOn=False)
        axis.draw(renderer)
        axis.set_tick_params(left=True, gridOn=True)

    def show(visible):
        axis.set_tick_params(labelleft=visible)
        axis.label.set_visible(visible)

    return _Sprite(canvas, draw, show)


class _FixedLegend(Legend):
    """A legend that lays itself out once. Its place, texts and marker sizes are the same in every
    run (only a marker's colour may change), so after its first draw it draws its frame and its
    leaf boxes (handles, texts) where they already are, instead of measuring and packing them
    again: the same pixels in a third of the time."""

    _leaves = None  # the leaf boxes in drawing order, after the first draw

    def draw(self, renderer):
        if not self.get_visible():
            return
        if self._leaves is None:
            super().draw(renderer)
            self._leaves = _leaf_boxes(self.get_children()[0])
            return
        self.get_frame().draw(renderer)
        for leaf in self._leaves:
            leaf.draw(renderer)


def _leaf_boxes(box):
    if isinstance(box, (DrawingArea, TextArea)):
        return [box]
    return [leaf for child in box.get_visible_children() for leaf in _leaf_boxes(child)]


def _legend(ax, handles, **kwargs):
    """``ax.legend(handles=handles, **kwargs)`` as a `_FixedLegend`."""
    ax.legend_ = _FixedLegend(ax, handles, [h.get_label() for h in handles], **kwargs)
    return ax.legend_


# ------------------------------------------------------------------------------ loss curve
LOSS_KEYS = (("train_loss", "-"), ("test_loss", "--"))
ACCURACY_KEYS = (("train_accuracy", "-"), ("test_accuracy", "--"))


def _log_subs(*arrays):
    """Labelled ticks per decade of a log axis: 1-2-3-5 within a decade or so, fewer when the
    values span many decades."""
    v = np.concatenate(arrays)
    v = v[np.isfinite(v) & (v > 0)]
    decades = np.log10(v.max() / v.min()) if v.size else 0.0
    return (1.0, 2.0, 3.0, 5.0) if decades < 1.5 else (1.0, 3.0) if decades < 4 else (1.0,)


def _build_loss_figure():
    fig = Figure(figsize=(8, 3.2), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.88, wspace=0.3)
    ax1, ax2 = fig.subplots(1, 2)
    lines = {}
    for ax, keys in ((ax1, LOSS_KEYS), (ax2, ACCURACY_KEYS)):
        for key, style in keys:
            (lines[key],) = ax.plot([], [], style, label=key)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    ax1.set_yscale("log")
    ax1.yaxis.set_major_formatter(PLAIN)
    ax1.yaxis.set_minor_locator(NullLocator())
    ax1.set_ylabel("loss")
    # a fixed place: "best" searches every point of every line
    _legend(ax1, [lines[k] for k, _ in LOSS_KEYS], loc="upper right")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)  # fixed: only x autoscales
    _legend(ax2, [lines[k] for k, _ in ACCURACY_KEYS], loc="lower right")
    return {"canvas": canvas, "axes": (ax1, ax2), "lines": lines, "title": fig.suptitle("", fontsize=9)}


def _loss_shortcuts(f):
    ax1, ax2 = f["axes"]
    # the x tick labels: one line of digits, as high as the font's fixed ascent and descent
    for ax in (ax1, ax2):
        _pin_label(f["canvas"], ax.xaxis)
    return [_fixed_tick_labels(f["canvas"], ax2.yaxis)]  # accuracy: 0.0 to 1.0 in every run


def loss_curve(curves, path, title=""):
    """Train/test loss (log scale) and accuracy per epoch. ``curves`` maps name -> (E,) array."""
    f = _figure("loss_curve", _build_loss_figure, _loss_shortcuts)
    ax1, ax2 = f["axes"]
    for key, line in f["lines"].items():
        line.set_data(curves["epoch"], curves[key])
    ax1.yaxis.set_major_locator(LogLocator(subs=_log_subs(curves["train_loss"], curves["test_loss"])))
    for ax in (ax1, ax2):
        ax.relim()  # data limits of this run's lines only
        ax.autoscale_view()
    f["title"].set_text(title)
    _render(f)
    _save(f["canvas"], path)


# ------------------------------------------------------------------------ decision boundary
def _scatter(ax, marker, label):
    return ax.scatter(
        np.zeros(1),
        np.zeros(1),
        c=np.zeros(1),
        cmap=CMAP,
        edgecolors="k",
        s=18,
        marker=marker,
        vmin=0,
        vmax=1,
        label=label,
    )


def _build_boundary_figure():
    fig = Figure(figsize=(4.8, 4), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.87)
    ax = fig.subplots()
    # The colorbar shows only the fixed levels, colormap and alpha: it is made from a template
    # contour set here and is then the same for every run (no new colorbar axes per run).
    template = ax.contourf(*np.meshgrid([0, 1], [0, 1]), np.eye(2), levels=LEVELS, cmap=CMAP, alpha=0.6)
    colorbar = fig.colorbar(template, ax=ax, label="P(class 1)")
    template.remove()
    train, test = _scatter(ax, "o", "train"), _scatter(ax, "s", "test")
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    # the legends ax.legend() makes with and without test points; each run sets the one it shows
    legends = {
        False: _legend(ax, [train, test], loc="upper right", fontsize=7),
        True: _legend(ax, [train], loc="upper right", fontsize=7),
    }
    return {
        "canvas": canvas,
        "ax": ax,
        "colorbar": colorbar.ax,
        "train": train,
        "test": test,
        "contours": [],
        "legends": legends,
        "title": ax.set_title("", fontsize=8),
    }


def _boundary_shortcuts(f):
    _pin_label(f["canvas"], f["ax"].xaxis)  # as in the loss curve
    # the colorbar is drawn last and the same in every run
    cax = f["colorbar"]
    # the title is placed by matplotlib at every draw (off a y offset text such as "+1e6")
    return [_Sprite(f["canvas"], cax.draw, cax.set_visible)]


def _probability_grid(net, X_all):
    """(xx, yy, p): a GRID x GRID plane over the first two features (0.5 beyond the data),
    the others at their median, and the net's P(class 1) there (softmax: argmax / (K - 1))."""
    lo, hi = X_all[:, :2].min(0) - 0.5, X_all[:, :2].max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    grid = np.tile(np.median(X_all, axis=0), (xx.size, 1))  # (GRID*GRID, F)
    grid[:, 0], grid[:, 1] = xx.ravel(), yy.ravel()
    p = net.forward(grid)
    p = (p[:, 0] if p.shape[1] == 1 else p.argmax(1) / (p.shape[1] - 1)).reshape(xx.shape)
    return xx, yy, p


def decision_boundary(net, X_train, y_train, X_test, y_test, path, title="", same_points=False):
    """P(class 1) over the plane of the first two features, others fixed at their median
    (tutorial 000 fixes its third feature at the median); points: train o, test s."""
    X_all = np.vstack([X_train, X_test])  # (N, F)
    xx, yy, p = _probability_grid(net, X_all)
    f = _figure("decision_boundary", _build_boundary_figure, _boundary_shortcuts)
    ax = f["ax"]
    while f["contours"]:  # the last run's, popped first: a failed call leaves none behind
        f["contours"].pop().remove()
    ax.ignore_existing_data_limits = True  # the limits are this run's contours and points
    # zorder 0.99: under the points (zorder 1) although added after them
    f["contours"].append(ax.contourf(xx, yy, p, levels=LEVELS, cmap=CMAP, alpha=0.6, zorder=0.99))
    f["contours"].append(ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5))
    points = [(f["train"], X_train, y_train)]
    if not same_points:
        points.append((f["test"], X_test, y_test))
    f["test"].set_visible(not same_points)
    for sc, X, y in points:
        sc.set_offsets(X[:, :2])
        sc.set_array(np.asarray(y, dtype=float))
        ax.update_datalim(sc.get_datalim(ax.transData))
    ax.autoscale_view()
    # A legend marker takes the colour of its scatter's first point, as when it was made.
    ax.legend_ = legend = f["legends"][same_points]
    for handle, (sc, _, _) in zip(legend.legend_handles, points):
        handle.set_array(sc.get_array())
    extra = "\n(other features at their median)" if X_all.shape[1] > 2 else ""
    f["title"].set_text(title + extra)
    _render(f)
    _save(f["canvas"], path)
