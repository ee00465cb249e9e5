"""The two per-run figures, drawn with matplotlib's object API on the Agg canvas (no window)."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

PNG_META = {"Software": None}  # no version string: identical inputs give identical bytes
PLAIN = FuncFormatter(lambda v, _: f"{v:g}")  # 0.2, 0.5, 1: no mathtext to lay out per tick


def _save(fig, path):
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=80, metadata=PNG_META)


def _log_subs(*arrays):
    """Labelled ticks per decade of a log axis: 1-2-3-5 within a decade or so, fewer when the
    values span many decades."""
    v = np.concatenate(arrays)
    v = v[np.isfinite(v) & (v > 0)]
    decades = np.log10(v.max() / v.min()) if v.size else 0.0
    return (1.0, 2.0, 3.0, 5.0) if decades < 1.5 else (1.0, 3.0) if decades < 4 else (1.0,)


def loss_curve(curves, path, title=""):
    """Train/test loss (log scale) and accuracy per epoch. ``curves`` maps name -> (E,) array."""
    fig = Figure(figsize=(8, 3.2))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.88, wspace=0.3)
    ax1, ax2 = fig.subplots(1, 2)
    epochs = curves["epoch"]
    for key, style in (("train_loss", "-"), ("test_loss", "--")):
        ax1.plot(epochs, curves[key], style, label=key)
    ax1.set_yscale("log")
    ax1.yaxis.set_major_locator(LogLocator(subs=_log_subs(curves["train_loss"], curves["test_loss"])))
    ax1.yaxis.set_major_formatter(PLAIN)
    ax1.yaxis.set_minor_locator(NullLocator())
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper right")  # a fixed place: "best" searches every point of every line
    ax1.grid(True, alpha=0.3)
    for key, style in (("train_accuracy", "-"), ("test_accuracy", "--")):
        ax2.plot(epochs, curves[key], style, label=key)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.legend(loc="lower right")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def decision_boundary(net, X_train, y_train, X_test, y_test, path, title="", same_points=False):
    """P(class 1) over the plane of the first two features, others fixed at their median
    (tutorial 000 fixes its third feature at the median); points: train o, test s."""
    X_all = np.vstack([X_train, X_test])  # (N, F)
    lo, hi = X_all[:, :2].min(0) - 0.5, X_all[:, :2].max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
    grid = np.tile(np.median(X_all, axis=0), (xx.size, 1))  # (150*150, F)
    grid[:, 0], grid[:, 1] = xx.ravel(), yy.ravel()
    p = net.forward(grid)
    p = (p[:, 0] if p.shape[1] == 1 else p.argmax(1) / (p.shape[1] - 1)).reshape(xx.shape)
    fig = Figure(figsize=(4.8, 4))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.87)
    ax = fig.subplots()
    cs = ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="RdBu_r", edgecolors="k", s=18,
               vmin=0, vmax=1, label="train")
    if not same_points:
        ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r", edgecolors="k", s=18,
                   marker="s", vmin=0, vmax=1, label="test")
    fig.colorbar(cs, ax=ax, label="P(class 1)")
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    extra = "\n(other features at their median)" if X_all.shape[1] > 2 else ""
    ax.set_title(title + extra, fontsize=8)
    ax.legend(loc="upper right", fontsize=7)
    _save(fig, path)
