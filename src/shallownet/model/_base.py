"""Lookup tables of plain functions: activations, their derivatives, initializers, losses, schedules.

Laid out like scikit-learn's ``neural_network/_base.py``. Conventions everywhere:

* data is row-major: ``X`` is ``(N, F)``, a layer's activations ``(N, H)``;
* weights are ``(fan_in, fan_out)``, biases ``(fan_out,)``;
* every function accepts an optional ``out`` buffer so that the training loop can run
  without allocating; called without it they behave like ordinary NumPy functions.

The tutorials' slips are fixed here: tanh' = 1 - tanh(z)**2 (tutorial 000's formula writes
(1 - a)**2), MSE's gradient is divided by the number of elements once (tutorial 001 divides
by m twice), and sigmoid / BCE never overflow (no RuntimeWarning for |z| up to 1e4 and beyond).
"""

import math

import numpy as np

# --------------------------------------------------------------------------------------
# Activations: f(z, out=None) -> a.  ``out`` may be ``z`` itself (in-place).


def identity(z, out=None):
    if out is None:
        return np.array(z, copy=True)
    if out is not z:
        np.copyto(out, z)
    return out


def sigmoid(z, out=None):
    """Logistic function without overflow: sigmoid(z) = exp(-softplus(-z)).

    Accurate to a few ulps in relative terms on both tails (1 / (1 + exp(-z)) overflows
    for z < -709; 0.5 * (1 + tanh(z / 2)) loses all relative precision for z << 0).
    """
    out = np.negative(z, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def tanh(z, out=None):
    return np.tanh(z, out=out)


def relu(z, out=None):
    return np.maximum(z, 0, out=out)


def leaky_relu(z, out=None, alpha=0.01):
    """max(z, alpha * z) for 0 <= alpha <= 1 (z for z > 0, alpha * z otherwise)."""
    if out is None or out is z:
        scaled = np.multiply(z, alpha)
    else:
        scaled = np.multiply(z, alpha, out=out)
    return np.maximum(z, scaled, out=out)


def softmax(z, out=None):
    """Row-wise softmax of logits (N, K), shifted by the row maximum for stability."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


ACTIVATIONS = {
    "identity": identity,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softmax": softmax,
}

# --------------------------------------------------------------------------------------
# Derivatives, written in terms of the activation's *output* a (so a may overwrite z):
# d(a, delta, tmp=None, ...) multiplies delta in place by f'(z) and returns delta.
# ``tmp`` is an optional scratch buffer shaped like ``a``.


def inplace_identity_derivative(a, delta, tmp=None):
    return delta


def inplace_sigmoid_derivative(a, delta, tmp=None):
    """f' = a (1 - a)."""
    tmp = np.subtract(1.0, a, out=tmp)
    tmp *= a
    delta *= tmp
    return delta


def inplace_tanh_derivative(a, delta, tmp=None):
    """f' = 1 - a**2 (tutorial 000's formula (1 - a)**2 is a typo)."""
    tmp = np.multiply(a, a, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    delta *= tmp
    return delta


def inplace_relu_derivative(a, delta, tmp=None):
    """f' = 1 where z > 0 else 0 (so relu'(0) = 0); a > 0 exactly where z > 0."""
    delta *= a > 0
    return delta


def inplace_leaky_relu_derivative(a, delta, tmp=None, alpha=0.01):
    """f' = 1 where z > 0 else alpha (a > 0 exactly where z > 0 for alpha >= 0)."""
    np.multiply(delta, alpha, out=delta, where=a <= 0)
    return delta


DERIVATIVES = {
    "identity": inplace_identity_derivative,
    "sigmoid": inplace_sigmoid_derivative,
    "tanh": inplace_tanh_derivative,
    "relu": inplace_relu_derivative,
    "leaky_relu": inplace_leaky_relu_derivative,
}

# --------------------------------------------------------------------------------------
# Initializers: init(fan_in, fan_out, rng) -> W (fan_in, fan_out); biases start at zero.


def small_random(fan_in, fan_out, rng):
    """Standard normal x 0.01: the tutorials' default."""
    return rng.standard_normal((fan_in, fan_out)) * 0.01


def xavier_uniform(fan_in, fan_out, rng):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out))


def xavier_normal(fan_in, fan_out, rng):
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out))


def he_normal(fan_in, fan_out, rng):
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), (fan_in, fan_out))


def he_uniform(fan_in, fan_out, rng):
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, (fan_in, fan_out))


INITIALIZERS = {
    "small_random": small_random,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}

# --------------------------------------------------------------------------------------
# Losses: loss(y, z, delta, output_activation) -> mean loss (float).
# ``z`` are the output layer's pre-activations (N, K), ``y`` the targets (N, K) in the same
# dtype.  Each loss writes the exact gradient dLoss/dz into ``delta`` (N, K): the loss carries
# its own gradient through the output activation.
# ``scratch`` is an optional (N, K) buffer.

# The output activation each logit-based loss is defined with.
LOSS_OUTPUT = {"bce": "sigmoid", "cross_entropy": "softmax", "mse": None}

# Every loss also takes stacked runs: y, z, delta (R, N, K) (y may be a broadcast view) and then
# returns one loss per run (R,). The reductions below are chosen so that each run's value is
# bit for bit the one its own (N, K) arrays give: a BLAS dot per run (np.matmul of (1, NK) by
# (NK, 1)) for np.vdot, and a pairwise sum over each run's N*K contiguous values for a.sum();
# np.einsum or multiply-then-sum differ from np.vdot by ~1e-15 (tests/test_stacked.py fails).


def _sums(a):
    """Sum over the last two axes: (..., N, K) -> (...) (a float for (N, K))."""
    return a.reshape(*a.shape[:-2], -1).sum(axis=-1)


def _dots(a, b):
    """<a, b> over the last two axes, (..., N, K) x (..., N, K) -> (...), one BLAS dot each."""
    lead = a.shape[:-2]
    return np.matmul(a.reshape(*lead, 1, -1), b.reshape(*lead, -1, 1)).reshape(lead)[()]


def bce(y, z, delta, output_activation="sigmoid", scratch=None):
    """Mean binary cross-entropy over samples and outputs, from logits (stable).

    loss = mean(softplus(z) - y z);  dloss/dz = (sigmoid(z) - y) / (N K).
    softplus(z) = logaddexp(0, z) never overflows; sigmoid(z) = exp(z - softplus(z)).
    """
    sp = np.logaddexp(0.0, z, out=scratch)  # (N, K)
    size = z.shape[-2] * z.shape[-1]
    loss = (_sums(sp) - _dots(y, z)) / size
    np.subtract(z, sp, out=delta)
    np.exp(delta, out=delta)  # sigmoid(z)
    delta -= y
    delta *= 1.0 / size
    return loss


def cross_entropy(y, z, delta, output_activation="softmax", scratch=None):
    """Mean over samples of -sum_k y_k log softmax(z)_k (y one-hot (N, K)), from logits.

    dloss/dz = (softmax(z) - y) / N.
    """
    n = z.shape[-2]
    shifted = np.subtract(z, z.max(axis=-1, keepdims=True), out=scratch)  # (N, K)
    np.exp(shifted, out=delta)
    sums = delta.sum(axis=-1, keepdims=True)  # (N, 1)
    loss = (_sums(np.log(sums)) - _dots(y, shifted)) / n
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
    size = z.shape[-2] * z.shape[-1]
    loss = _dots(delta, delta) / size
    delta *= 2.0 / size
    DERIVATIVES[output_activation](a, delta)
    return loss


LOSSES = {"bce": bce, "cross_entropy": cross_entropy, "mse": mse}

# --------------------------------------------------------------------------------------
# Learning-rate schedules: lr(epoch, state) -> learning rate for that epoch's updates.
# ``state`` is a dict owned by one training run: ``lr`` (the base rate), the schedule's own
# hyper-parameters, ``epochs`` (the run's length) and ``loss`` (the training loss measured at
# this epoch, before its update). ``plateau`` also keeps its counters in it. A schedule's
# hyper-parameters a caller leaves out (or passes as None) come from SCHEDULE_DEFAULTS, filled
# in by mlp._schedule; the functions read them from ``state`` directly.

# The one statement of each schedule's hyper-parameter defaults: the model's and the harness's
# (shallownet/config.py registers these as the nodes conf/lr_schedule/*.yaml pull in).
SCHEDULE_DEFAULTS = {
    "constant": {},
    "step": {"step_size": 500, "gamma": 0.5},
    "exponential": {"gamma": 0.999},
    "cosine": {"min_lr": 0.0},
    "plateau": {"patience": 100, "factor": 0.95},
}


def constant(epoch, state):
    return state["lr"]


def step(epoch, state):
    """lr * gamma ** (epoch // step_size)."""
    return state["lr"] * state["gamma"] ** (epoch // state["step_size"])


def exponential(epoch, state):
    """lr * gamma ** epoch."""
    return state["lr"] * state["gamma"] ** epoch


def cosine(epoch, state):
    """Cosine annealing from lr to min_lr over the run's epochs."""
    lo = state["min_lr"]
    return lo + 0.5 * (state["lr"] - lo) * (1.0 + math.cos(math.pi * epoch / state["epochs"]))


def plateau(epoch, state):
    """Tutorial 001's AdaptiveLearningRate: after ``patience`` (100) epochs without a new best
    training loss, multiply the rate by ``factor`` (0.95) and start counting again."""
    current = state.setdefault("current", state["lr"])
    loss = state["loss"]
    if loss < state.setdefault("best", math.inf):
        state["best"] = loss
        state["wait"] = 0
    else:
        state["wait"] = state.get("wait", 0) + 1
        if state["wait"] >= state["patience"]:
            current *= state["factor"]
            state["current"] = current
            state["wait"] = 0
    return current


SCHEDULES = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "cosine": cosine,
    "plateau": plateau,
}
