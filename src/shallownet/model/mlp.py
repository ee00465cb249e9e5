"""The network and its training loop: plain NumPy, row-major, preallocated buffers.

Shapes: X (N, F); layer l maps (N, fan_in) -> (N, fan_out) with W (fan_in, fan_out) and
b (fan_out,); the output layer has K units (K = 1 for a sigmoid output).
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

    def _flat(self, dtype=None):
        """One contiguous vector (P,) holding every parameter, with views (fan_in, fan_out)
        and (fan_out,) into it: updates and finiteness checks then take one NumPy call."""
        sizes = self.layer_sizes
        flat = np.empty(self.n_params_for(sizes), dtype or self.dtype)
        Ws, bs, o = [], [], 0
        for fi, fo in zip(sizes[:-1], sizes[1:]):
            Ws.append(flat[o : o + fi * fo].reshape(fi, fo))
            o += fi * fo
            bs.append(flat[o : o + fo])
            o += fo
        return flat, Ws, bs

    @staticmethod
    def n_params_for(sizes):
        return sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))

    def _workspace(self, n):
        """Buffers for a batch of n rows: activations A[l] (n, size) (the output layer's
        holds logits), deltas D[l], scratch T[l], and gradient views gW[l], gb[l] into one
        flat vector g (P,)."""
        sizes, dt = self.layer_sizes[1:], self.dtype
        g, gW, gb = self._flat()
        return {
            "A": [np.empty((n, s), dt) for s in sizes],
            "D": [np.empty((n, s), dt) for s in sizes],
            "T": [np.empty((n, s), dt) for s in sizes],
            "g": g,
            "gW": gW,
            "gb": gb,
        }

    def _forward(self, X, Ws, bs, ws):
        """Forward pass into the workspace; returns the output logits (n, K)."""
        A, act, a = ws["A"], self._act, X
        last = len(Ws) - 1
        for l in range(last + 1):
            z = A[l]
            np.matmul(a, Ws[l], out=z)  # (n, fan_out)
            z += bs[l]
            if l < last:
                act(z, out=z)  # activations overwrite z: derivatives use a only
            a = z
        return a

    def _backward(self, X, Ws, ws, delta):
        """Backpropagate delta = dL/dz of the output (n, K) into ws['gW'], ws['gb']."""
        A, D, T, gW, gb, dact = ws["A"], ws["D"], ws["T"], ws["gW"], ws["gb"], self._dact
        for l in range(len(Ws) - 1, -1, -1):
            a_prev = X if l == 0 else A[l - 1]  # (n, fan_in)
            np.matmul(a_prev.T, delta, out=gW[l])  # (fan_in, fan_out)
            np.sum(delta, axis=0, out=gb[l])  # (fan_out,)
            if l > 0:
                np.matmul(delta, Ws[l].T, out=D[l - 1])  # (n, fan_in)
                delta = dact(A[l - 1], D[l - 1], T[l - 1])

    def _loss(self, loss_fn, Y, z, ws, Ws, l2):
        value = loss_fn(Y, z, ws["D"][-1], self.output_activation, ws["T"][-1])
        if l2:
            value += 0.5 * l2 * sum(float(np.vdot(W, W)) for W in Ws)
        return value

    def gradients(self, X, y, loss="bce", l2=0.0):
        """Loss and its exact gradient at the current parameters.

        loss = mean data loss + 0.5 * l2 * sum_l ||W_l||^2 (biases are not decayed).
        Returns (loss_value, dW, db): lists shaped like ``weights`` and ``biases``.
        """
        loss_fn = self._check_loss(loss)
        X = np.ascontiguousarray(X, dtype=self.dtype)
        Y = self.targets(y)
        Ws = [np.ascontiguousarray(W, dtype=self.dtype) for W in self.weights]
        bs = [np.ascontiguousarray(b, dtype=self.dtype) for b in self.biases]
        ws = self._workspace(X.shape[0])
        z = self._forward(X, Ws, bs, ws)
        value = self._loss(loss_fn, Y, z, ws, Ws, l2)
        self._backward(X, Ws, ws, ws["D"][-1])
        dW = [g.copy() for g in ws["gW"]]
        if l2:
            for g, W in zip(dW, Ws):
                g += l2 * W
        return value, dW, [g.copy() for g in ws["gb"]]


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
    """
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    loss_fn = net._check_loss(loss)
    sched, state = _schedule(lr, epochs)
    dt = net.dtype
    X = np.ascontiguousarray(X, dtype=dt)  # (N, F)
    Y = net.targets(y)  # (N, K)
    n = X.shape[0]
    if X.ndim != 2 or X.shape[1] != net.layer_sizes[0] or Y.shape[0] != n:
        raise ValueError(
            f"X must be (N, {net.layer_sizes[0]}) with one target per row; got X {X.shape}, y {np.shape(y)}"
        )
    full = batch_size is None or int(batch_size) >= n
    bsz = n if full else int(batch_size)
    if bsz < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    # Two flat parameter sets: each update reads `cur` and writes `nxt`, so the parameters
    # from before the last update survive (restored on divergence; shown to the callback).
    cur, nxt = net._flat(), net._flat()
    for Wc, bc, W, b in zip(cur[1], cur[2], net.weights, net.biases):
        Wc[...] = W
        bc[...] = b
    nxt[0][...] = cur[0]
    losses = np.empty(epochs)
    rates = np.empty(epochs)
    hist = History(losses, rates)
    forward, backward, loss_of = net._forward, net._backward, net._loss
    n_layers = len(net.layer_sizes) - 1
    limit = math.inf

    def step(Xb, Yb, w, e, rate):
        """One update from ``cur`` into ``nxt``. Returns (loss, rate, ok): the loss measured
        before the update; ok is False, with no update made, when that loss is non-finite or
        over the limit, and None when the update made a parameter non-finite."""
        flat, Ws, bs = cur
        z = forward(Xb, Ws, bs, w)  # (n, K) logits
        value = loss_of(loss_fn, Yb, z, w, Ws, l2)
        if not value <= limit:  # also catches NaN
            return value, rate, False
        if rate is None:
            state["loss"] = value
            rate = float(sched(e, state))
        delta = w["D"][-1]
        delta *= rate  # every gradient below comes out scaled by the rate
        backward(Xb, Ws, w, delta)
        np.subtract(flat, w["g"], out=nxt[0])
        if l2:
            for l in range(n_layers):
                nxt[1][l] -= (rate * l2) * Ws[l]
        total = nxt[0].sum()
        return value, rate, bool(total - total == 0) or None  # None for inf and NaN

    fixed_rate = state["lr"] if sched is None else None
    ok = True
    with np.errstate(all="ignore"):  # divergence is detected and reported, not warned
        net.train_logits = None
        if full:
            ws = net._workspace(n)
            if callback is not None:
                net.train_logits = ws["A"][-1]
            for e in range(epochs):
                value, rate, ok = step(X, Y, ws, e, fixed_rate)
                if ok is not True:
                    break
                if e == 0:
                    limit = divergence_factor * value if value > 0 else math.inf
                losses[e] = value
                rates[e] = rate
                cur, nxt = nxt, cur
                if callback is not None:
                    net.weights, net.biases = nxt[1], nxt[2]
                    callback(e, value, rate)
        else:
            rng = np.random.default_rng(seed)
            spaces = {}
            Xbuf, Ybuf = np.empty_like(X), np.empty_like(Y)
            ws = net._workspace(n)
            prev = loss_of(loss_fn, Y, forward(X, cur[1], cur[2], ws), ws, cur[1], l2)
            limit = divergence_factor * prev if prev > 0 else math.inf
            for e in range(epochs):
                state["loss"] = prev
                rate = fixed_rate if sched is None else float(sched(e, state))
                perm = rng.permutation(n)
                np.take(X, perm, axis=0, out=Xbuf)
                np.take(Y, perm, axis=0, out=Ybuf)
                total = 0.0
                for start in range(0, n, bsz):
                    m = min(bsz, n - start)
                    w = spaces.get(m) or spaces.setdefault(m, net._workspace(m))
                    value, rate, ok = step(Xbuf[start : start + m], Ybuf[start : start + m], w, e, rate)
                    if ok is not True:
                        break
                    total += value * m
                    cur, nxt = nxt, cur
                if ok is not True:
                    break
                prev = total / n
                losses[e] = prev
                rates[e] = rate
                if callback is not None:
                    net.weights, net.biases = cur[1], cur[2]
                    callback(e, prev, rate)

    net.train_logits = None  # a workspace buffer: only meaningful inside the callback
    if ok is True:
        net.weights, net.biases = cur[1], cur[2]
        return hist
    # ok False: the loss at `cur` failed, `nxt` holds the parameters before the last update
    # (a copy of the initial ones at the start). ok None: `cur` is fine, its update was not.
    if ok is False:
        keep = nxt
    else:
        keep = cur
        if full:  # cur's loss is healthy: record it, the divergence shows at the next epoch
            losses[e], rates[e] = value, rate
            e += 1
    hist.diverged_at, hist.diverged_loss = e, float(value)
    net.weights, net.biases = [W.copy() for W in keep[1]], [b.copy() for b in keep[2]]
    hist.loss, hist.lr = losses[:e].copy(), rates[:e].copy()
    return hist


def train_stacked(nets, X, y, *, seeds, callback=None, **kw):  # TEMPORARY shim, replaced by branch stacked
    hists = []
    for r, (net, seed) in enumerate(zip(nets, seeds)):
        R = len(nets)

        def cb(e, value, rate, r=r):
            alive = np.zeros(R, bool)
            alive[r] = True
            losses = np.full(R, np.nan)
            rates = np.full(R, np.nan)
            losses[r], rates[r] = value, rate
            callback(e, alive, losses, rates)

        hists.append(train(net, X, y, seed=seed, callback=cb if callback else None, **kw))
    return hists
