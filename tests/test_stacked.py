"""train_stacked against an oracle: a verbatim copy of main's ``train`` (before #21) with
the model internals and losses it ran on, also verbatim. Every run of a stack must be bit
for bit (np.array_equal, float64, one BLAS thread) what the oracle gives for that net alone:
final weights and biases, History.loss/lr, diverged_at/diverged_loss, and every callback
call's loss, lr, weights, biases and train_logits."""

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from shallownet.model import INITIALIZERS, MLP, train
from shallownet.model._base import ACTIVATIONS, DERIVATIVES, LOSS_OUTPUT
from shallownet.model.mlp import History, _choice, _schedule, stacked_logits, train_stacked


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


# ---------------------------------------------------------------- oracle (verbatim from main)


def bce(y, z, delta, output_activation="sigmoid", scratch=None):
    """Mean binary cross-entropy over samples and outputs, from logits (stable).

    loss = mean(softplus(z) - y z);  dloss/dz = (sigmoid(z) - y) / (N K).
    softplus(z) = logaddexp(0, z) never overflows; sigmoid(z) = exp(z - softplus(z)).
    """
    sp = np.logaddexp(0.0, z, out=scratch)  # (N, K)
    size = z.size
    loss = (float(sp.sum()) - float(np.vdot(y, z))) / size
    np.subtract(z, sp, out=delta)
    np.exp(delta, out=delta)  # sigmoid(z)
    delta -= y
    delta *= 1.0 / size
    return loss


def cross_entropy(y, z, delta, output_activation="softmax", scratch=None):
    """Mean over samples of -sum_k y_k log softmax(z)_k (y one-hot (N, K)), from logits.

    dloss/dz = (softmax(z) - y) / N.
    """
    n = z.shape[0]
    shifted = np.subtract(z, z.max(axis=1, keepdims=True), out=scratch)  # (N, K)
    np.exp(shifted, out=delta)
    sums = delta.sum(axis=1, keepdims=True)  # (N, 1)
    loss = (float(np.log(sums).sum()) - float(np.vdot(y, shifted))) / n
    delta /= sums
    delta -= y
    delta *= 1.0 / n
    return loss


def mse(y, z, delta, output_activation="identity", scratch=None):
    """Mean squared error over samples *and* outputs: mean((a - y)**2) with a = f(z).

    dloss/dz = 2 (a - y) / (N K) * f'(z): divided by the element count once (tutorial 001
    divides by m twice).
    """
    if output_activation not in DERIVATIVES:
        raise ValueError(f"mse needs an element-wise output activation, got {output_activation!r}")
    a = ACTIVATIONS[output_activation](z, out=scratch)  # (N, K)
    np.subtract(a, y, out=delta)
    size = z.size
    loss = float(np.vdot(delta, delta)) / size
    delta *= 2.0 / size
    DERIVATIVES[output_activation](a, delta)
    return loss


LOSSES = {"bce": bce, "cross_entropy": cross_entropy, "mse": mse}


class OracleNet:
    """A copy of ``net`` carrying main's training internals (verbatim below), for oracle_train."""

    def __init__(self, net):
        self.layer_sizes, self.dtype = net.layer_sizes, net.dtype
        self.output_activation, self._act, self._dact = net.output_activation, net._act, net._dact
        self.targets = net.targets
        self.weights = [W.copy() for W in net.weights]
        self.biases = [b.copy() for b in net.biases]

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


def oracle_train(
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


# ---------------------------------------------------------------- the comparison
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
LOSS_NETS = {  # loss -> (output activation, output units)
    "bce": ("sigmoid", 1),
    "cross_entropy": ("softmax", 3),
    "mse": ("tanh", 2),
}
SCHEDULES = {
    "constant": 0.3,
    # with this rate and patience the plateau schedule decays in 148 of the grid's 150
    # (activation, loss, initializer, batch) stacks (all but tanh/identity, bce, small_random,
    # full batch): the decay path is well covered
    "plateau": {"name": "plateau", "lr": 4.0, "patience": 1, "factor": 0.5},
    "step": {"name": "step", "lr": 0.5, "step_size": 7, "gamma": 0.5},
    "cosine": {"name": "cosine", "lr": 0.5, "min_lr": 0.01},
}
EPOCHS = 24
R = 5


def data(loss, n=40, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    if loss == "cross_entropy":
        return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    if loss == "mse":
        return X, np.tanh(X[:, :2] * [1.0, -0.5])
    return X, (X[:, 0] * X[:, 1] > 0).astype(int)


def nets(hidden, loss, initializer, runs=R):
    out, k = LOSS_NETS[loss]
    return [MLP([3, 6, k], hidden, out, initializer, seed=10 + r) for r in range(runs)]


class Calls:
    """Every callback call of one run: (epoch, loss, lr, weights, biases, train_logits)."""

    def __init__(self):
        self.calls = []

    def add(self, net, e, loss, rate):
        z = None if net.train_logits is None else net.train_logits.copy()
        copies = [W.copy() for W in net.weights], [b.copy() for b in net.biases]
        self.calls.append((e, loss, rate, *copies, z))


def solo(net, X, y, seed, **kw):
    """Oracle run of a copy of ``net``: (OracleNet after training, History, Calls)."""
    twin, calls = OracleNet(net), Calls()
    hist = oracle_train(twin, X, y, seed=seed, callback=lambda e, v, r: calls.add(twin, e, v, r), **kw)
    return twin, hist, calls


def stacked(models, X, y, seeds, **kw):
    """train_stacked on ``models``: (Histories, Calls per run)."""
    calls = [Calls() for _ in models]

    def cb(e, alive, losses, rates):
        for r in np.flatnonzero(alive):
            calls[r].add(models[r], e, float(losses[r]), float(rates[r]))

    return train_stacked(models, X, y, seeds=seeds, callback=cb, **kw), calls


def assert_same(net, hist, calls, twin, want, want_calls):
    for a, b in zip(net.weights + net.biases, twin.weights + twin.biases, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert np.array_equal(hist.loss, want.loss) and np.array_equal(hist.lr, want.lr)
    assert (hist.diverged_at, hist.diverged_loss) == (want.diverged_at, want.diverged_loss)
    assert len(calls.calls) == len(want_calls.calls)
    for got, ref in zip(calls.calls, want_calls.calls):
        assert got[:3] == ref[:3]  # epoch, loss, lr
        for a, b in zip(got[3] + got[4], ref[3] + ref[4], strict=True):
            assert np.array_equal(a, b)
        assert (got[5] is None) == (ref[5] is None)
        assert got[5] is None or np.array_equal(got[5], ref[5])


@pytest.mark.parametrize("initializer", sorted(INITIALIZERS))
@pytest.mark.parametrize("loss", sorted(LOSS_NETS))
@pytest.mark.parametrize("hidden", HIDDEN)
def test_stack_of_5_and_of_1_equal_the_oracle_bit_for_bit(hidden, loss, initializer):
    X, y = data(loss)
    seeds = [7 * r + 1 for r in range(R)]
    for lr in SCHEDULES.values():
        for batch_size in (None, 16):
            for l2 in (0.0, 1e-2):
                kw = dict(epochs=EPOCHS, lr=lr, loss=loss, batch_size=batch_size, l2=l2)
                wants = [solo(m, X, y, s, **kw) for m, s in zip(nets(hidden, loss, initializer), seeds)]
                models = nets(hidden, loss, initializer)
                hists, calls = stacked(models, X, y, seeds, **kw)
                for r in range(R):
                    assert_same(models[r], hists[r], calls[r], *wants[r])
                # R = 1, through train's own callback(e, loss, lr) contract
                (one,), one_calls = nets(hidden, loss, initializer, 1), Calls()
                h1 = train(
                    one, X, y, seed=seeds[0], callback=lambda e, v, r: one_calls.add(one, e, v, r), **kw
                )
                assert_same(one, h1, one_calls, *wants[0])


def test_plateau_decays_per_run_and_differently():
    X, y = data("bce")
    kw = dict(epochs=60, lr=SCHEDULES["plateau"], loss="bce")
    models = nets("tanh", "bce", "xavier_uniform")
    hists, _ = stacked(models, X, y, list(range(R)), **kw)
    decays = [int(np.sum(np.diff(h.lr) < 0)) for h in hists]
    assert all(h.diverged_at is None for h in hists)
    assert min(decays) > 0 and len({tuple(h.lr) for h in hists}) > 1  # each run its own state


@pytest.mark.parametrize(
    "batch_size, lr, scales",
    [
        (None, 0.1, (3.0, 6.0)),  # both over the loss limit, at epochs 3 and 1
        (None, 0.1, (3.0, 1e100)),  # run 3: its first update makes the params non-finite
        (10, 0.05, (3.5, 4.0)),  # mid-epoch, at epochs 1 and 0
        (10, 0.05, (3.5, 1e100)),
    ],
)
def test_runs_1_and_3_diverge_alone_at_different_epochs(batch_size, lr, scales):
    """A linear 3-6-2 net under MSE: runs 1 and 3 start from weights scaled up, their
    gradient descent is unstable at this rate and diverges; the others converge."""
    X, y = data("mse")
    kw = dict(epochs=60, lr=lr, loss="mse", batch_size=batch_size)
    seeds = [1, 2, 3, 4, 5]

    def models():
        out = [MLP([3, 6, 2], "identity", "identity", seed=10 + r) for r in range(R)]
        for r, scale in zip((1, 3), scales):
            out[r].weights = [W * scale for W in out[r].weights]
        return out

    wants = [solo(m, X, y, s, **kw) for m, s in zip(models(), seeds)]
    ms = models()
    hists, calls = stacked(ms, X, y, seeds, **kw)
    at = [h.diverged_at for h in hists]
    assert at[0] is None and at[2] is None and at[4] is None, at
    assert at[1] is not None and at[3] is not None and at[1] != at[3], at
    for r in range(R):
        assert_same(ms[r], hists[r], calls[r], *wants[r])


def test_callback_alive_mask_and_no_call_after_all_stopped():
    X, y = data("bce")
    X, y = data("mse")
    ms = [MLP([3, 6, 2], "identity", "identity", seed=s) for s in (10, 11)]
    ms[1].weights = [W * 3.0 for W in ms[1].weights]
    seen = []
    hists = train_stacked(
        ms,
        X,
        y,
        epochs=50,
        lr=0.1,
        loss="mse",
        seeds=[0, 1],
        callback=lambda e, a, lo, ra: seen.append(a.copy()),
    )
    stop = hists[1].diverged_at
    assert stop is not None and len(seen) == 50
    assert all(a[0] for a in seen) and [bool(a[1]) for a in seen] == [e < stop for e in range(50)]


def test_stacked_logits_are_each_nets_logits():
    X, _ = data("cross_entropy")
    ms = nets("tanh", "cross_entropy", "he_normal")
    z = stacked_logits(ms, X)
    assert z.shape == (R, len(X), 3)
    assert all(np.allclose(z[r], m.logits(X), rtol=0, atol=1e-14) for r, m in enumerate(ms))


def test_stack_needs_one_architecture_and_one_seed_per_net():
    X, y = data("bce")
    with pytest.raises(ValueError, match="same layer_sizes"):
        train_stacked([MLP([3, 4, 1]), MLP([3, 5, 1])], X, y, epochs=1, lr=0.1, seeds=[0, 1])
    with pytest.raises(ValueError, match="same layer_sizes"):
        train_stacked([MLP([3, 4, 1], "tanh"), MLP([3, 4, 1], "relu")], X, y, epochs=1, lr=0.1, seeds=[0, 1])
    with pytest.raises(ValueError, match="same layer_sizes"):
        train_stacked([], X, y, epochs=1, lr=0.1, seeds=[])
    with pytest.raises(ValueError):
        train_stacked([MLP([3, 4, 1]), MLP([3, 4, 1])], X, y, epochs=1, lr=0.1, seeds=[0])
