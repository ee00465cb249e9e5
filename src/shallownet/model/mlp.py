"""The network and its training loop: plain NumPy, row-major, preallocated buffers.

Shapes: X (N, F); layer l maps (N, fan_in) -> (N, fan_out) with W (fan_in, fan_out) and
b (fan_out,); the output layer has K units (K = 1 for a sigmoid output). Training stacks R
runs on a leading axis: W (R, fan_in, fan_out), b (R, 1, fan_out), activations (R, N, fan_out);
``train`` is ``train_stacked`` with R = 1.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ._base import (
    ACTIVATIONS,
    DERIVATIVES,
    INITIALIZERS,
    LOSS_OUTPUT,
    LOSSES,
    SCHEDULE_DEFAULTS,
    SCHEDULES,
    _dots,
    inplace_leaky_relu_derivative,
    leaky_relu,
)

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity", "tanh")
DTYPES = ("float32", "float64")


def _choice(kind, value, valid):
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")


class MLP:
    """Fully connected network: len(layer_sizes) - 1 affine layers.

    ``MLP([2, 16, 1], "relu")`` is tutorial 002's 2-16-1 net: one hidden layer of 16 ReLU
    units and one sigmoid output. Parameters are drawn from ``numpy.random.default_rng(seed)``
    layer by layer (weights only; biases start at zero).

    Attributes:
        weights: list of arrays (fan_in, fan_out); readable and assignable.
        biases: list of arrays (fan_out,); readable and assignable.
    """

    def __init__(
        self,
        layer_sizes,
        hidden_activation="tanh",
        output_activation="sigmoid",
        initializer="xavier_uniform",
        seed=0,
        dtype="float64",
        leaky_relu_alpha=0.01,
    ):
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes needs >= 2 positive sizes, got {list(layer_sizes)}")
        _choice("hidden activation", hidden_activation, HIDDEN_ACTIVATIONS)
        _choice("output activation", output_activation, OUTPUT_ACTIVATIONS)
        _choice("initializer", initializer, tuple(INITIALIZERS))
        _choice("dtype", str(np.dtype(dtype)), DTYPES)
        if output_activation == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs >= 2 output units")
        if not 0.0 <= leaky_relu_alpha <= 1.0:
            raise ValueError(f"leaky_relu_alpha must be in [0, 1], got {leaky_relu_alpha}")
        self.layer_sizes = sizes
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.initializer = initializer
        self.seed = seed
        self.dtype = np.dtype(dtype)
        self.leaky_relu_alpha = leaky_relu_alpha
        if hidden_activation == "leaky_relu":
            self._act = functools.partial(leaky_relu, alpha=leaky_relu_alpha)
            self._dact = functools.partial(inplace_leaky_relu_derivative, alpha=leaky_relu_alpha)
        else:
            self._act = ACTIVATIONS[hidden_activation]
            self._dact = DERIVATIVES[hidden_activation]
        rng = np.random.default_rng(seed)
        init = INITIALIZERS[initializer]
        self.weights = [init(i, o, rng).astype(self.dtype) for i, o in zip(sizes[:-1], sizes[1:])]
        self.biases = [np.zeros(o, dtype=self.dtype) for o in sizes[1:]]
        self.train_logits = None  # set by train() for its callback (full batch)

    def __repr__(self):
        return (
            f"MLP({self.layer_sizes}, hidden_activation={self.hidden_activation!r}, "
            f"output_activation={self.output_activation!r}, dtype={self.dtype.name!r})"
        )

    @property
    def n_params(self):
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    # ---------------------------------------------------------------- inference
    def logits(self, X):
        """Output layer pre-activations (N, K)."""
        a = np.asarray(X, dtype=self.dtype)  # (N, F)
        last = len(self.weights) - 1
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ np.asarray(W, dtype=self.dtype)  # (N, fan_out)
            z += b
            a = z if l == last else self._act(z, out=z)
        return a

    def forward(self, X):
        """Network output after the output activation, (N, K)."""
        z = self.logits(X)
        return ACTIVATIONS[self.output_activation](z, out=z)

    def predict(self, X):
        """Class labels (N,): 0.5 threshold on one sigmoid output, argmax otherwise."""
        out = self.forward(X)
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return out.argmax(axis=1)

    # ---------------------------------------------------------------- training internals
    def targets(self, y):
        """Targets shaped like the output (N, K) in the net's dtype (labels -> one-hot for K > 1)."""
        y = np.asarray(y)
        k = self.layer_sizes[-1]
        if y.ndim == 1 and k > 1:
            onehot = np.zeros((y.shape[0], k), dtype=self.dtype)
            onehot[np.arange(y.shape[0]), y.astype(np.int64)] = 1
            return onehot
        return np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=self.dtype)

    def _check_loss(self, loss):
        _choice("loss", loss, tuple(LOSSES))
        needed = LOSS_OUTPUT[loss]
        if needed is not None and self.output_activation != needed:
            raise ValueError(
                f"loss {loss!r} needs output_activation={needed!r}, got {self.output_activation!r}"
            )
        if loss == "mse" and self.output_activation == "softmax":
            raise ValueError("loss 'mse' needs an element-wise output activation, not softmax")
        return LOSSES[loss]

    def _flat(self, runs=1):
        """One contiguous block (R, P) holding R stacked parameter sets, with views W (R,
        fan_in, fan_out) and b (R, 1, fan_out) into it: an update or a finiteness check of
        all runs is then one NumPy call."""
        sizes = self.layer_sizes
        flat = np.empty((runs, self.n_params_for(sizes)), self.dtype)
        Ws, bs, o = [], [], 0
        for fi, fo in zip(sizes[:-1], sizes[1:]):
            Ws.append(flat[:, o : o + fi * fo].reshape(runs, fi, fo))
            o += fi * fo
            bs.append(flat[:, o : o + fo].reshape(runs, 1, fo))
            o += fo
        return flat, Ws, bs

    @staticmethod
    def n_params_for(sizes):
        return sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))

    def _workspace(self, n, runs=1):
        """Buffers for R runs on batches of n rows: activations A[l] (R, n, size) (the output
        layer's holds logits), deltas D[l], scratch T[l], and gradient views gW[l], gb[l]
        into one block g (R, P)."""
        sizes, dt = self.layer_sizes[1:], self.dtype
        g, gW, gb = self._flat(runs)
        return {
            "A": [np.empty((runs, n, s), dt) for s in sizes],
            "D": [np.empty((runs, n, s), dt) for s in sizes],
            "T": [np.empty((runs, n, s), dt) for s in sizes],
            "g": g,
            "gW": gW,
            "gb": gb,
        }

    def _forward(self, X, Ws, bs, ws):
        """Forward pass of X (n, F) or (R, n, F) into the workspace; returns the output
        logits (R, n, K)."""
        A, act, a = ws["A"], self._act, X
        last = len(Ws) - 1
        for l in range(last + 1):
            z = A[l]
            np.matmul(a, Ws[l], out=z)  # (R, n, fan_out): one BLAS call per run
            z += bs[l]
            if l < last:
                act(z, out=z)  # activations overwrite z: derivatives use a only
            a = z
        return a

    def _backward(self, X, Ws, ws, delta):
        """Backpropagate delta = dL/dz of the output (R, n, K) into ws['gW'], ws['gb']."""
        A, D, T, gW, gb, dact = ws["A"], ws["D"], ws["T"], ws["gW"], ws["gb"], self._dact
        for l in range(len(Ws) - 1, -1, -1):
            a_prev = X if l == 0 else A[l - 1]  # (R, n, fan_in)
            np.matmul(a_prev.swapaxes(-1, -2), delta, out=gW[l])  # (R, fan_in, fan_out)
            delta.sum(axis=-2, keepdims=True, out=gb[l])  # (R, 1, fan_out)
            if l > 0:
                np.matmul(delta, Ws[l].swapaxes(-1, -2), out=D[l - 1])  # (R, n, fan_in)
                delta = dact(A[l - 1], D[l - 1], T[l - 1])

    def _loss(self, loss_fn, Y, z, ws, Ws, l2):
        """Loss per run (R,) at logits z (R, n, K); the delta dL/dz goes into ws['D'][-1]."""
        value = loss_fn(Y, z, ws["D"][-1], self.output_activation, ws["T"][-1])
        if l2:
            value += 0.5 * l2 * sum(_dots(W, W) for W in Ws)
        return value

    def gradients(self, X, y, loss="bce", l2=0.0):
        """Loss and its exact gradient at the current parameters.

        loss = mean data loss + 0.5 * l2 * sum_l ||W_l||^2 (biases are not decayed).
        Returns (loss_value, dW, db): lists shaped like ``weights`` and ``biases``.
        """
        loss_fn = self._check_loss(loss)
        X = np.ascontiguousarray(X, dtype=self.dtype)
        Y = self.targets(y)
        _, Ws, bs = _stack([self])
        ws = self._workspace(X.shape[0])
        z = self._forward(X, Ws, bs, ws)
        value = self._loss(loss_fn, Y, z, ws, Ws, l2)
        self._backward(X, Ws, ws, ws["D"][-1])
        dW = [g[0].copy() for g in ws["gW"]]
        if l2:
            for g, W in zip(dW, Ws):
                g += l2 * W[0]
        return float(value[0]), dW, [g[0, 0].copy() for g in ws["gb"]]


# ------------------------------------------------------------------------------------ train
@dataclass
class History:
    """Per-epoch training record. ``loss[e]``/``lr[e]`` for e < epochs completed.

    For full-batch training loss[e] is the training loss at the weights *before* epoch e's
    update (as the tutorials record it); with mini-batches it is the size-weighted mean of the
    epoch's batch losses. ``diverged_at`` is the epoch at which training stopped because the
    loss or the parameters became non-finite or the loss exceeded divergence_factor x the
    initial loss; None when training ran to the end.
    """

    loss: np.ndarray
    lr: np.ndarray
    diverged_at: int | None = None
    diverged_loss: float | None = None
    extra: dict = field(default_factory=dict)

    def __getitem__(self, key):  # history["loss"] works too
        return getattr(self, key)

    @property
    def epochs_completed(self):
        return len(self.loss)


def _schedule(lr, epochs):
    """Normalise ``lr`` into (fn, state): a float, a dict {'name': ..., 'lr': ..., params}
    or a callable fn(epoch, state). A named schedule's params that are missing or None come
    from SCHEDULE_DEFAULTS."""
    if callable(lr):
        return lr, {"epochs": epochs}
    if isinstance(lr, dict) or hasattr(lr, "items"):
        state = dict(lr)
        name = state.pop("name", "constant")
        _choice("lr schedule", name, tuple(SCHEDULES))
        for key, default in SCHEDULE_DEFAULTS[name].items():
            if state.get(key) is None:
                state[key] = default
        base = state.get("lr")
        if base is None or not float(base) > 0:
            raise ValueError(f"lr schedule needs a learning rate lr > 0, got {base!r}")
        state["epochs"] = epochs
        return SCHEDULES[name], state
    rate = float(lr)
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    return None, {"lr": rate, "epochs": epochs}


def _stack(nets):
    """The nets' parameters stacked on a run axis: (flat (R, P), Ws, bs), see MLP._flat."""
    flat, Ws, bs = nets[0]._flat(len(nets))
    for r, net in enumerate(nets):
        for l, (W, b) in enumerate(zip(net.weights, net.biases)):
            Ws[l][r] = W
            bs[l][r, 0] = b
    return flat, Ws, bs


def _rows(params, r):
    """Run r's parameters as MLP.weights, MLP.biases views: (fan_in, fan_out), (fan_out,)."""
    _, Ws, bs = params
    return [W[r] for W in Ws], [b[r, 0] for b in bs]


def stacked_logits(nets, X):
    """Output logits (R, N, K) of R nets sharing one architecture (see train_stacked)."""
    net = _same_architecture(nets)
    _, Ws, bs = _stack(nets)
    X = np.ascontiguousarray(X, dtype=net.dtype)
    return net._forward(X, Ws, bs, net._workspace(X.shape[0], len(nets)))


def _same_architecture(nets):
    keys = [
        (m.layer_sizes, m.hidden_activation, m.output_activation, m.dtype, m.leaky_relu_alpha) for m in nets
    ]
    if not keys or any(k != keys[0] for k in keys):
        raise ValueError(
            "train_stacked needs >= 1 nets with the same layer_sizes, activations, dtype and alpha"
        )
    return nets[0]


def train(
    net,
    X,
    y,
    *,
    epochs,
    lr,
    loss="bce",
    batch_size=None,
    l2=0.0,
    seed=0,
    callback=None,
    divergence_factor=100.0,
):
    """Gradient descent on ``net`` in place; returns a :class:`History`.

    Args:
        X: (N, F) inputs; y: (N,) labels or (N, K) targets.
        epochs: number of passes over the data (>= 1).
        lr: a float, a schedule dict {'name': one of SCHEDULES, 'lr': base rate, ...params}
            (params left out: SCHEDULE_DEFAULTS) or a callable fn(epoch, state) -> rate.
            ``state['loss']`` is the loss measured at this epoch before its update
            (mini-batch: the previous epoch's mean loss).
        batch_size: None (or >= N) for full batch; otherwise batches are reshuffled every
            epoch by ``numpy.random.default_rng(seed)``.
        l2: weight decay, 0.5 * l2 * sum ||W||^2 added to the loss (biases not decayed).
        callback: optional callback(epoch, loss, lr), called after each epoch with
            ``net.weights``/``net.biases`` set to the parameters that ``loss`` was measured
            at (full batch) or to the end-of-epoch parameters (mini-batch). In full-batch
            training ``net.train_logits`` then holds the (N, K) output logits of X at those
            parameters (a buffer overwritten every epoch), so a callback gets the training
            accuracy without another forward pass; it is None otherwise.
        divergence_factor: stop when the loss exceeds this times the initial loss.

    On divergence at epoch e the net keeps the last parameters whose loss was finite and
    under the limit, history.loss holds epochs 0..e-1, and ``history.diverged_at == e``.
    This is train_stacked with one run.
    """
    solo = None
    if callback is not None:
        solo = lambda e, alive, losses, rates: callback(e, float(losses[0]), float(rates[0]))  # noqa: E731
    kw = dict(
        epochs=epochs, lr=lr, loss=loss, batch_size=batch_size, l2=l2, divergence_factor=divergence_factor
    )
    return train_stacked([net], X, y, seeds=[seed], callback=solo, **kw)[0]


@dataclass
class _Run:
    """One run's own state: its net, schedule (fn, state), shuffle rng and record."""

    net: MLP
    sched: object
    state: dict
    rng: np.random.Generator
    hist: History


def train_stacked(
    nets,
    X,
    y,
    *,
    epochs,
    lr,
    loss="bce",
    batch_size=None,
    l2=0.0,
    seeds,
    callback=None,
    divergence_factor=100.0,
):
    """Train R nets of one architecture at once, each exactly as ``train`` would train it
    alone (bit for bit); returns their R Histories.

    The R parameter sets are stacked on a leading run axis and every step is one NumPy call
    over all runs (one BLAS call per run inside). ``seeds`` are the runs' mini-batch shuffle
    seeds; ``lr`` is one schedule spec, each run keeping its own schedule state. A run that
    diverges stops alone (see ``train``); the others go on. ``callback(epoch, alive, losses,
    rates)`` is called after every epoch some run completed: alive (R,) bool, losses and
    rates (R,) (meaningful where alive), with each alive net's weights, biases and
    train_logits set as ``train`` sets them for its callback.
    """
    net = _same_architecture(nets)
    X, Y, epochs, bsz = _checked_inputs(net, X, y, epochs, batch_size, l2)
    runs = [
        _Run(m, *_schedule(lr, epochs), np.random.default_rng(s), History(np.empty(0), np.empty(0)))
        for m, s in zip(nets, seeds, strict=True)
    ]
    n, full = X.shape[0], bsz == X.shape[0]
    batches = [(start, min(bsz, n - start)) for start in range(0, n, bsz)]  # a full batch is one
    sizes = {n} | {m for _, m in batches}
    s = _Stack(net, runs, epochs, net._check_loss(loss), l2, sizes, None if full else (X, Y))
    Y_all = np.broadcast_to(Y, (len(runs), *Y.shape))  # (R, N, K): the losses reduce per run
    with np.errstate(all="ignore"):  # divergence is detected and reported, not warned
        if not full:  # the limit comes from the initial loss, which also sets epoch 0's rate
            epoch_loss = s.loss(X, Y_all, n)
            s.limits = _limit(epoch_loss, divergence_factor)
        for e in range(epochs):
            if not full:
                rates = s.rates(e, epoch_loss)
                Xs, Ys = s.shuffled(X, Y)  # (R, N, F), (R, N, K)
            total = np.zeros(len(runs))
            for start, m in batches:
                Xb, Yb = (X, Y_all) if full else (Xs[:, start : start + m], Ys[:, start : start + m])
                values = s.loss(Xb, Yb, m)  # (R,): at cur, before this update
                s.stop(values <= s.limits, s.nxt, e, values)  # (also NaN) keep the params before
                if full:
                    rates = s.rates(e, values)
                finite = s.update(Xb, m, rates)  # else keep cur; in full batch its loss is epoch e's
                s.stop(finite, s.cur, e + full, values, rates if full else None)
                s.cur, s.nxt = s.nxt, s.cur
                total += values * m
                if not s.n_alive:
                    break
            if not s.n_alive:
                break
            if full and e == 0:
                s.limits = _limit(values, divergence_factor)
            epoch_loss = values if full else total / n
            s.record(e, epoch_loss, rates)
            if callback is not None:  # the params the loss was measured at / the epoch's end
                s.show(s.nxt if full else s.cur, s.spaces[n]["A"][-1] if full else None)
                callback(e, ~s.stopped, epoch_loss, rates)
    return s.finish()


_all = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper


class _Stack:
    """The R runs' parameters on a leading run axis, their records, and which runs stopped.

    Two parameter sets: each update reads ``cur`` and writes ``nxt``, so the parameters from
    before the last update survive (kept on divergence; shown to the callback)."""

    def __init__(self, net, runs, epochs, loss_fn, l2, batch_sizes, shuffle=None):
        """shuffle: (X, Y) of a mini-batch training, whose shuffled copies need buffers."""
        self.net, self.runs, self.loss_fn, self.l2 = net, runs, loss_fn, l2
        R = len(runs)
        if shuffle is not None:
            X, Y = shuffle
            self.perms = np.empty((R, X.shape[0]), dtype=np.intp)  # (R, N)
            self.Xs, self.Ys = np.empty((R, *X.shape), X.dtype), np.empty((R, *Y.shape), Y.dtype)
        self.cur = _stack([run.net for run in runs])
        self.nxt = net._flat(R)
        self.nxt[0][...] = self.cur[0]
        self.stopped = np.zeros(R, dtype=bool)
        self.n_alive = R
        self.losses, self.lrs = np.empty((R, epochs)), np.empty((R, epochs))  # History rows
        self.limits = np.full(R, math.inf)  # full batch: set from epoch 0's loss
        self.spaces = {m: net._workspace(m, R) for m in batch_sizes}
        self.fixed = None if runs[0].sched is not None else np.full(R, runs[0].state["lr"])
        for run in runs:
            run.net.train_logits = None

    def shuffled(self, X, Y):
        """This epoch's rows of X (N, F), Y (N, K) in each run's own order, drawn from its rng:
        (R, N, F), (R, N, K) buffers."""
        for r, run in enumerate(self.runs):
            self.perms[r] = run.rng.permutation(X.shape[0])
        np.take(X, self.perms, axis=0, out=self.Xs)
        np.take(Y, self.perms, axis=0, out=self.Ys)
        return self.Xs, self.Ys

    def loss(self, Xb, Yb, m):
        """Loss per run (R,) at ``cur`` on batches Xb (m, F) or (R, m, F); leaves its delta."""
        _, Ws, bs = self.cur
        w = self.spaces[m]
        return self.net._loss(self.loss_fn, Yb, self.net._forward(Xb, Ws, bs, w), w, Ws, self.l2)

    def rates(self, e, losses):
        """Epoch e's learning rate per run (R,), each schedule fed its run's loss (0: stopped)."""
        if self.fixed is not None:
            return self.fixed
        rates = np.zeros(len(self.runs))
        for r in np.flatnonzero(~self.stopped):
            run = self.runs[r]
            run.state["loss"] = float(losses[r])
            rates[r] = float(run.sched(e, run.state))
        return rates

    def update(self, Xb, m, rates):
        """One gradient step of every run from ``cur`` into ``nxt`` (from the delta the last
        loss left); returns (R,) bool: the run's new parameters are all finite."""
        cur, nxt, ws = self.cur, self.nxt, self.spaces[m]
        scale = rates[:, None, None]  # (R, 1, 1)
        delta = ws["D"][-1]
        delta *= scale  # every gradient below comes out scaled by the rate
        self.net._backward(Xb, cur[1], ws, delta)
        np.subtract(cur[0], ws["g"], out=nxt[0])
        if self.l2:
            for W_next, W in zip(nxt[1], cur[1]):
                W_next -= (scale * self.l2) * W
        total = nxt[0].sum(axis=1)  # (R,)
        return total - total == 0  # False for inf and NaN

    def stop(self, healthy, params, e, losses, rates=None):
        """Alive runs not ``healthy`` diverged at epoch e: each keeps its row of ``params``
        (copies) and epochs 0..e-1 (epoch e-1's loss and rate recorded first if ``rates``)."""
        healthy |= self.stopped
        if _all(healthy):
            return
        if rates is not None:
            self.record(e - 1, losses, rates)
        for r in np.flatnonzero(~healthy):
            net, h = self.runs[r].net, self.runs[r].hist
            Ws, bs = _rows(params, r)
            net.weights, net.biases = [W.copy() for W in Ws], [b.copy() for b in bs]
            h.diverged_at, h.diverged_loss = e, float(losses[r])
            h.loss, h.lr = self.losses[r, :e].copy(), self.lrs[r, :e].copy()
        self.stopped |= ~healthy
        self.n_alive = len(self.runs) - int(np.count_nonzero(self.stopped))

    def record(self, e, losses, rates):
        """Epoch e's loss and rate of every run (read only for the runs that had them)."""
        self.losses[:, e], self.lrs[:, e] = losses, rates

    def show(self, params, logits):
        """Set each alive net's weights, biases (views of ``params``) and train_logits."""
        for r in np.flatnonzero(~self.stopped):
            net = self.runs[r].net
            net.weights, net.biases = _rows(params, r)
            net.train_logits = None if logits is None else logits[r]  # (N, K)

    def finish(self):
        """Runs that ran to the end keep ``cur`` and their full record; returns every run's
        History."""
        for r in np.flatnonzero(~self.stopped):
            self.runs[r].net.weights, self.runs[r].net.biases = _rows(self.cur, r)
            self.runs[r].hist.loss, self.runs[r].hist.lr = self.losses[r], self.lrs[r]
        for run in self.runs:
            run.net.train_logits = None  # a workspace buffer: only meaningful inside the callback
        return [run.hist for run in self.runs]


def _checked_inputs(net, X, y, epochs, batch_size, l2):
    """(X (N, F), Y (N, K), epochs, batch size) validated, in the net's dtype."""
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    X = np.ascontiguousarray(X, dtype=net.dtype)  # (N, F)
    Y = net.targets(y)  # (N, K)
    n = X.shape[0]
    if X.ndim != 2 or X.shape[1] != net.layer_sizes[0] or Y.shape[0] != n:
        raise ValueError(
            f"X must be (N, {net.layer_sizes[0]}) with one target per row; got X {X.shape}, y {np.shape(y)}"
        )
    bsz = n if batch_size is None or int(batch_size) >= n else int(batch_size)
    if bsz < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return X, Y, epochs, bsz


def _limit(first_loss, factor):
    """Per-run divergence limits (R,) from the initial losses (no limit unless positive)."""
    return np.where(first_loss > 0, factor * first_loss, math.inf)
