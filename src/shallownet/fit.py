"""Training one configuration: the net a RunConfig describes, its per-epoch curves
and how training ended. Pure computation: no store, no Hydra, no signals of its own (a
KeyboardInterrupt from ``shallownet.stop`` ends it KILLED with the epochs done so far)."""

import time
from dataclasses import dataclass

import numpy as np

from shallownet.model import LOSSES, MLP, train_stacked

from .names import METRIC_KEYS as CURVES


class Curves:
    """Per-epoch values, preallocated for the planned epochs and filled as training goes:
    ``n`` epochs are done. Read by the run's pulse thread while training writes it."""

    def __init__(self, epochs):
        self.planned = epochs
        self.values = {k: np.empty(0) for k in CURVES}
        self.n = 0

    def allocate(self):
        """Reserve the (E,) arrays: inside fit(), so that running out of memory here is a
        failed run like any other, with its reason recorded."""
        self.values = {k: np.full(self.planned, np.nan) for k in CURVES}

    def done(self):
        """{name: (n,) array} of the epochs done, plus ``epoch``."""
        n = self.n
        out = {k: v[:n] for k, v in self.values.items()}
        out["epoch"] = np.arange(n)
        return out


@dataclass
class Fit:
    net: MLP
    curves: Curves
    status: str  # FINISHED | DIVERGED | FAILED | KILLED
    reason: str | None
    diverged_at: int | None
    seconds: float


class Evaluator:
    """Loss and accuracy of the net on fixed data, for the per-epoch curves."""

    def __init__(self, net, X, y, loss):
        self.net, self.X, self.y = net, X, y
        self.Y = net.targets(y)  # (N, K)
        self.loss = LOSSES[loss]
        self.delta = np.empty_like(self.Y)

    def __call__(self, z=None):
        """(loss, accuracy); ``z`` are the logits of X when already known."""
        z = self.net.logits(self.X) if z is None else z  # (N, K)
        value = self.loss(self.Y, z, self.delta, self.net.output_activation)
        return value, self.accuracy(z)

    def accuracy(self, z):
        pred = (z[:, 0] > 0) if z.shape[1] == 1 else z.argmax(1)
        return float(np.count_nonzero(pred == self.y)) / len(self.y)


def layer_sizes(run, split):
    """[F inputs, *hidden, K outputs] of the net a RunConfig describes for this data."""
    k = 1 if run.output == "sigmoid" else len(split.classes)
    return [split.X_train.shape[1], *run.hidden_sizes, k]


def make_net(run, split):
    """The MLP a RunConfig describes, sized for the data."""
    return MLP(
        layer_sizes(run, split),
        run.activation,
        run.output,
        run.initializer,
        seed=run.seed,
        dtype=run.dtype,
        leaky_relu_alpha=run.alpha,
    )


def _recorder(net, split, loss, curves):
    """Fill ``curves`` with epoch e's train/test loss, accuracy and lr of ``net``."""
    ev_train = Evaluator(net, split.X_train, split.y_train, loss)
    ev_test = Evaluator(net, split.X_test, split.y_test, loss)
    v = curves.values

    def on_epoch(e, loss_value, lr):
        v["train_loss"][e] = loss_value
        v["lr"][e] = lr
        v["test_loss"][e], v["test_accuracy"][e] = ev_test()
        z = net.train_logits  # full batch: the logits the loss was measured on
        v["train_accuracy"][e] = ev_train.accuracy(net.logits(ev_train.X) if z is None else z)
        curves.n = e + 1

    return on_epoch


def _stacked_recorder(nets, split, loss, curves_list):
    """train_stacked()'s per-epoch callback: each run that did epoch e records it."""
    recorders = [_recorder(n, split, loss, cv) for n, cv in zip(nets, curves_list)]

    def on_epoch(e, alive, losses, rates):
        for r in np.flatnonzero(alive):
            recorders[r](e, float(losses[r]), float(rates[r]))

    return on_epoch


def fit(run, split, curves):
    """One run: ``fit_stacked`` of one RunConfig."""
    return fit_stacked([run], split, [curves])[0]


def fit_stacked(runs, split, curves_list):
    """Build the nets of RunConfigs ``runs`` (the same but for ``seed``) and train them as one
    stacked computation, filling each run's curves; [Fit], one per run. Never raises for a
    failed, diverged or interrupted training: each Fit says how its run ended (a run that
    diverges stops alone; a failure or an interrupt ends them all)."""
    c = runs[0]
    t0 = time.perf_counter()
    status, reason, hists, nets = "FINISHED", None, [None] * len(runs), [None] * len(runs)
    try:
        nets = [make_net(run, split) for run in runs]
        for curves in curves_list:
            curves.allocate()
        hists = train_stacked(
            nets,
            split.X_train,
            split.y_train,
            epochs=c.epochs,
            lr=c.schedule,
            loss=c.loss,
            batch_size=c.batch_size,
            l2=c.l2,
            seeds=[run.seed for run in runs],
            callback=_stacked_recorder(nets, split, c.loss, curves_list),
            divergence_factor=c.divergence_factor,
        )
    except KeyboardInterrupt:
        status, reason = "KILLED", "interrupted at epoch {n}"
    except MemoryError:
        status, reason = "FAILED", "out of memory at epoch {n} (MemoryError)"
    except Exception as err:  # a bug or a numerical failure: keep what was measured
        status, reason = "FAILED", f"{type(err).__name__}: {err}".replace("{", "{{").replace("}", "}}")
    seconds = (time.perf_counter() - t0) / len(runs)  # each run's share of the stacked compute
    return [
        _ended(run, net, curves, hist, status, reason, seconds)
        for run, net, curves, hist in zip(runs, nets, curves_list, hists)
    ]


def _ended(run, net, curves, hist, status, reason, seconds):
    """One run's Fit: the job's status and reason (``{n}``: its epochs done), or DIVERGED."""
    reason = reason and reason.format(n=curves.n)
    diverged = hist.diverged_at if hist is not None else None
    if diverged is not None:
        status = "DIVERGED"
        first = hist.loss[0] if len(hist.loss) else float("nan")
        reason = (
            f"diverged at epoch {diverged}: loss {hist.diverged_loss:.4g} (initial "
            f"{first:.4g}, limit {run.divergence_factor:g}x)"
        )
    return Fit(net, curves, status, reason, diverged, seconds)
