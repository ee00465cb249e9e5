"""Tutorial 000's study for the peers (benchmarks/bench_peers.py): the data, one training with
its per-epoch curves, the epochs a tracker is sent, and the two figures. Tracker-free: each
peer script (wandb_sweep.py, mlflow_sweep.py) records what this computes the way its tool's
documentation shows.

Training is shallownet's own ``model`` package (src/model, NumPy only), loaded from its
folder and nothing else of shallownet: the same MLP and train() that ``shallownet-train``
calls, with the same arguments, so every variant of the benchmark computes the same
arithmetic and the final losses are identical by construction (bench_peers.py checks that
they are). The comparison is about recording a sweep, not about training it.

The per-epoch curves are the ones shallownet keeps (train/test loss and accuracy, lr, every
epoch); what differs between the variants is only how they are recorded.

``python study.py --pure`` trains the 15 runs one after the other in this process, without a
tracker, and prints one JSON line: seconds and final losses (bench_peers.py's reference).
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "src" / "shallownet" / "model"


def _load_model_package():
    """shallownet's src/model as the top-level package ``model``, without putting src/ on
    sys.path: src/ also holds shallownet's Hydra plugins (hydra_plugins/), which Hydra would
    otherwise discover in the peers' sweeps."""
    if "model" in sys.modules:
        return sys.modules["model"]
    spec = importlib.util.spec_from_file_location(
        "model", MODEL_DIR / "__init__.py", submodule_search_locations=[str(MODEL_DIR)]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["model"] = mod
    spec.loader.exec_module(mod)
    return mod


_model = _load_model_package()
MLP, train_net = _model.MLP, _model.train

CURVES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")
ACTIVATIONS = ("tanh", "relu", "leaky_relu")
SEEDS = range(5)


def load_data(data):
    """Tutorial 000's data as shallownet makes it: make_classification with every feature
    informative, then train_test_split with the same random_state. Returns X_train (400, 3),
    X_test (100, 3) float64 and y_train, y_test int64."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_samples=data["n_samples"],
        n_features=data["n_features"],
        n_redundant=0,
        n_informative=data["n_features"],
        n_clusters_per_class=1,
        flip_y=data["flip_y"],
        class_sep=data["class_sep"],
        random_state=data["random_state"],
    )
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=data["test_size"], random_state=data["random_state"]
    )
    return (
        np.ascontiguousarray(X_tr),
        np.ascontiguousarray(X_te),
        np.ascontiguousarray(y_tr),
        np.ascontiguousarray(y_te),
    )


def recorded_epochs(epochs, max_points):
    """At most max_points epochs out of ``epochs``, evenly spread, first and last included:
    the steps shallownet sends to MLflow (tracking.subsample_steps)."""
    if epochs <= max_points:
        return np.arange(epochs)
    return np.unique(np.round(np.linspace(0, epochs - 1, max_points)).astype(int))


def fit(cfg, data, on_record=None):
    """Train the 3-4-1 net ``cfg`` describes on ``data`` (load_data's tuple).

    Every epoch: train loss (measured before the update, as the model reports it), test loss
    and accuracy, train accuracy and lr, into full (epochs,) curves. ``on_record(epoch,
    {name: value})`` is called during training at recorded_epochs() (a tracker's live
    logging). Returns (net, curves {name: (epochs,) array}, seconds).
    """
    X_tr, X_te, y_tr, y_te = data
    epochs = int(cfg["epochs"])
    net = MLP(
        [X_tr.shape[1], int(cfg["hidden"]), 1],
        cfg["activation"],
        "sigmoid",
        "small_random",
        seed=int(cfg["seed"]),
        leaky_relu_alpha=float(cfg["leaky_relu_alpha"]),
    )
    curves = {k: np.full(epochs, np.nan) for k in CURVES}
    Y_te = y_te.reshape(-1, 1).astype(np.float64)
    record = set(recorded_epochs(epochs, int(cfg["max_points"])).tolist()) if on_record else ()

    def on_epoch(e, loss, lr):
        z = net.logits(X_te)  # (100, 1) at the parameters `loss` was measured at
        curves["train_loss"][e] = loss
        curves["lr"][e] = lr
        curves["test_loss"][e] = (float(np.logaddexp(0.0, z).sum()) - float(np.vdot(Y_te, z))) / z.size
        curves["test_accuracy"][e] = np.count_nonzero((z[:, 0] > 0) == y_te) / len(y_te)
        curves["train_accuracy"][e] = np.count_nonzero((net.train_logits[:, 0] > 0) == y_tr) / len(y_tr)
        if e in record:
            on_record(e, {k: float(curves[k][e]) for k in CURVES})

    t0 = time.perf_counter()
    hist = train_net(net, X_tr, y_tr, epochs=epochs, lr=float(cfg["lr"]), loss="bce", callback=on_epoch)
    seconds = time.perf_counter() - t0
    if hist.diverged_at is not None:
        raise RuntimeError(f"{cfg['activation']} seed {cfg['seed']} diverged at epoch {hist.diverged_at}")
    return net, curves, seconds


# ------------------------------------------------------------------------------ figures
# The two figures shallownet draws for every run (shallownet/plots.py), with the same
# content, size and resolution (80 dpi), written the way the trackers' docs draw theirs:
# pyplot's plt.subplots(), closed after logging.


def loss_curve_figure(curves, title):
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    epochs = np.arange(len(curves["train_loss"]))
    ax1.plot(epochs, curves["train_loss"], "-", label="train_loss")
    ax1.plot(epochs, curves["test_loss"], "--", label="test_loss")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper right")
    ax1.grid(True, alpha=0.3)
    ax2.plot(epochs, curves["train_accuracy"], "-", label="train_accuracy")
    ax2.plot(epochs, curves["test_accuracy"], "--", label="test_accuracy")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.legend(loc="lower right")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=9)
    return fig


def decision_boundary_figure(net, data, title):
    """P(class 1) over the plane of the first two features, the third at its median."""
    import matplotlib.pyplot as plt

    X_tr, X_te, y_tr, y_te = data
    X_all = np.vstack([X_tr, X_te])
    lo, hi = X_all[:, :2].min(0) - 0.5, X_all[:, :2].max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
    grid = np.tile(np.median(X_all, axis=0), (xx.size, 1))
    grid[:, 0], grid[:, 1] = xx.ravel(), yy.ravel()
    p = net.forward(grid)[:, 0].reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(4.8, 4), dpi=80)
    cs = ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(
        X_tr[:, 0], X_tr[:, 1], c=y_tr, cmap="RdBu_r", edgecolors="k", s=18, vmin=0, vmax=1, label="train"
    )
    ax.scatter(
        X_te[:, 0],
        X_te[:, 1],
        c=y_te,
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
    ax.set_title(title + "\n(other features at their median)", fontsize=8)
    ax.legend(loc="upper right", fontsize=7)
    return fig


# ------------------------------------------------------------------------------ --pure

STUDY = {"hidden": 4, "epochs": 2000, "lr": 0.1, "leaky_relu_alpha": 0.01, "max_points": 200}
DATA = {
    "n_samples": 500,
    "n_features": 3,
    "class_sep": 1.5,
    "flip_y": 0.1,
    "random_state": 42,
    "test_size": 0.2,
}


def pure():
    """The study's 15 trainings in this process, no tracker: {seconds, final losses}."""
    from threadpoolctl import threadpool_limits

    data = load_data(DATA)
    total, finals = 0.0, {}
    with threadpool_limits(1):
        for act in ACTIVATIONS:
            for seed in SEEDS:
                _, curves, seconds = fit(dict(STUDY, activation=act, seed=seed), data)
                total += seconds
                finals[f"{act}/{seed}"] = [float(curves["train_loss"][-1]), float(curves["test_loss"][-1])]
    return {"seconds": total, "finals": finals}


if __name__ == "__main__":
    if sys.argv[1:] != ["--pure"]:
        sys.exit("usage: python study.py --pure")
    print(json.dumps(pure()))
