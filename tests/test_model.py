"""The NumPy model: exact gradients, tutorial equivalence, outcomes, divergence, determinism."""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from shallownet.model import (
    ACTIVATIONS,
    DERIVATIVES,
    INITIALIZERS,
    LOSSES,
    MLP,
    SCHEDULE_DEFAULTS,
    SCHEDULES,
    train,
)

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
# every loss with the output activations it is defined for
LOSS_OUTPUTS = [
    ("bce", "sigmoid", 1),
    ("cross_entropy", "softmax", 3),
    ("mse", "identity", 2),
    ("mse", "sigmoid", 1),
]


def quadrant(n=200, seed=42):
    X = np.random.default_rng(seed).standard_normal((n, 2))  # (N, 2)
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def numeric_gradient(net, X, y, loss, l2, eps=1e-6):
    """Central differences over every parameter."""

    def f():
        return net.gradients(X, y, loss=loss, l2=l2)[0]

    grads = []
    for p in net.weights + net.biases:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = f()
            p[i] = old - eps
            down = f()
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize(
    "hidden,loss_out,depth,l2", list(itertools.product(HIDDEN, LOSS_OUTPUTS, [1, 2, 3], [0.0, 0.1]))
)
def test_gradient_check(hidden, loss_out, depth, l2):
    loss, out, k = loss_out
    rng = np.random.default_rng(depth * 7 + len(hidden))
    X = rng.standard_normal((9, 3))
    if loss == "cross_entropy":
        y = rng.integers(0, k, 9)
    elif loss == "mse" and out == "identity":
        y = rng.standard_normal((9, k))
    else:
        y = rng.integers(0, 2, 9)
    net = MLP([3] + [5] * depth + [k], hidden, out, initializer="xavier_normal", seed=depth)
    for b in net.biases:  # nonzero biases so they are checked too
        b[...] = rng.standard_normal(b.shape) * 0.1
    value, dW, db = net.gradients(X, y, loss=loss, l2=l2)
    num = numeric_gradient(net, X, y, loss, l2)
    ana = np.concatenate([g.ravel() for g in dW + db])
    num = np.concatenate([g.ravel() for g in num])
    rel = np.linalg.norm(ana - num) / (np.linalg.norm(ana) + np.linalg.norm(num))
    assert rel < 1e-6, rel
    assert np.isfinite(value) and value > 0


def test_loss_values_match_definitions():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 1)) * 3
    y = rng.integers(0, 2, (6, 1)).astype(float)
    p = 1 / (1 + np.exp(-z))
    delta = np.empty_like(z)
    assert LOSSES["bce"](y, z, delta) == pytest.approx(
        -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-12
    )
    np.testing.assert_allclose(delta, (p - y) / 6, rtol=1e-12)
    # MSE: mean over samples and outputs, gradient divided by the element count once
    z2 = rng.standard_normal((6, 2))
    y2 = rng.standard_normal((6, 2))
    d2 = np.empty_like(z2)
    assert LOSSES["mse"](y2, z2, d2, "identity") == pytest.approx(np.mean((z2 - y2) ** 2))
    np.testing.assert_allclose(d2, 2 * (z2 - y2) / 12, rtol=1e-12)
    # cross-entropy with one-hot targets
    z3 = rng.standard_normal((5, 3))
    y3 = np.eye(3)[[0, 2, 1, 1, 0]]
    sm = np.exp(z3) / np.exp(z3).sum(1, keepdims=True)
    d3 = np.empty_like(z3)
    assert LOSSES["cross_entropy"](y3, z3, d3) == pytest.approx(-np.mean(np.log((sm * y3).sum(1))))
    np.testing.assert_allclose(d3, (sm - y3) / 5, rtol=1e-12)


def test_activation_definitions():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"](z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(ACTIVATIONS["tanh"](z), np.tanh(z))
    np.testing.assert_array_equal(ACTIVATIONS["relu"](z), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"](z), [-0.02, -0.005, 0, 0.5, 2])
    # derivatives, in terms of the activation output
    d = DERIVATIVES["tanh"](np.tanh(z), np.ones(5))
    np.testing.assert_allclose(d, 1 - np.tanh(z) ** 2)  # not (1 - a)**2
    d = DERIVATIVES["relu"](ACTIVATIONS["relu"](z), np.ones(5))
    np.testing.assert_array_equal(d, [0, 0, 0, 1, 1])  # relu'(0) = 0
    d = DERIVATIVES["leaky_relu"](ACTIVATIONS["leaky_relu"](z), np.ones(5))
    np.testing.assert_allclose(d, [0.01, 0.01, 0.01, 1, 1])
    s = ACTIVATIONS["sigmoid"](z)
    np.testing.assert_allclose(DERIVATIVES["sigmoid"](s, np.ones(5)), s * (1 - s))


def test_sigmoid_and_bce_stable_and_silent_at_extreme_logits():
    z = np.array([[-1e4], [-800.0], [-30.0], [0.0], [30.0], [800.0], [1e4]])
    y = np.array([[1.0], [0], [1], [0], [1], [1], [0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ACTIVATIONS["sigmoid"](z)
        delta = np.empty_like(z)
        value = LOSSES["bce"](y, z, delta)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(delta)) and np.isfinite(value)
    assert s[0, 0] == 0.0 and s[-1, 0] == 1.0
    assert s[2, 0] == pytest.approx(9.357622968840175e-14, rel=1e-12)  # relative accuracy kept
    # softplus(1e4) - 0 + softplus(800) ... exactly: (1e4 + 0 + 30 + log2 + 0 + 0 + 1e4) / 7
    expected = (
        1e4
        + 0
        + (30 + np.log1p(np.exp(-30)))
        + np.log(2)
        + np.log1p(np.exp(-30))
        + np.log1p(np.exp(-800))
        + 1e4
    ) / 7
    assert value == pytest.approx(expected, rel=1e-12)


def tutorial002_loop(X, y, W1, b1, W2, b2, epochs, lr):
    """Tutorial 002's train_step, transcribed (global state made explicit)."""

    def relu(x):
        return np.maximum(0, x)

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def binary_cross_entropy(y_true, y_pred, eps=1e-8):
        y_pred = np.clip(y_pred, eps, 1 - eps)
        return np.mean(-(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)))

    losses, clipped = [], []
    for _ in range(epochs):
        num_samples = X.shape[0]
        z1 = X @ W1 + b1
        a1 = relu(z1)
        z2 = a1 @ W2 + b2
        y_pred = sigmoid(z2)
        losses.append(binary_cross_entropy(y, y_pred))
        clipped.append(bool(np.any((y_pred < 1e-8) | (y_pred > 1 - 1e-8))))
        dz2 = y_pred - y
        dW2 = a1.T @ dz2 / num_samples
        db2 = np.sum(dz2, axis=0, keepdims=True) / num_samples
        da1 = dz2 @ W2.T
        dz1 = da1.copy()
        dz1[z1 <= 0] = 0
        dW1 = X.T @ dz1 / num_samples
        db1 = np.sum(dz1, axis=0, keepdims=True) / num_samples
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
    return np.array(losses), np.array(clipped)


def test_full_batch_equals_tutorial002_loop():
    X, y = quadrant()
    net = MLP([2, 16, 1], "relu", "sigmoid", initializer="small_random", seed=3)
    W1, W2 = net.weights[0].copy(), net.weights[1].copy()
    b1, b2 = net.biases[0][None, :].copy(), net.biases[1][None, :].copy()
    ref, clipped = tutorial002_loop(X, y.reshape(-1, 1).astype(float), W1, b1, W2, b2, 1000, 0.5)
    hist = train(net, X, y, epochs=1000, lr=0.5, loss="bce")
    assert hist.diverged_at is None and len(hist.loss) == 1000
    # The tutorial clips predictions to [1e-8, 1 - 1e-8] inside its loss (not its gradient):
    # its loss values are exact only while nothing is clipped; the weights are always exact.
    assert 100 < np.argmax(clipped) < 1000
    np.testing.assert_allclose(hist.loss[~clipped], ref[~clipped], rtol=0, atol=1e-10)
    np.testing.assert_allclose(hist.loss[clipped], ref[clipped], rtol=1e-6)
    for ours, theirs in zip(net.weights + net.biases, [W1, W2, b1[0], b2[0]]):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert hist.loss[-1] < 0.2 * hist.loss[0]  # it did learn, so the comparison means something


def test_full_batch_equals_sklearn_sgd():
    X, y = quadrant(150, seed=5)
    k = 25
    net = MLP([2, 8, 1], "tanh", "sigmoid", initializer="xavier_uniform", seed=1)
    clf = MLPClassifier(
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="sgd",
        batch_size=len(X),
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        learning_rate_init=0.3,
        learning_rate="constant",
        shuffle=False,
        max_iter=1,
        tol=0.0,
        n_iter_no_change=10**9,
        warm_start=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)  # initialise sklearn's structures, then start from our weights
        clf.coefs_ = [W.copy() for W in net.weights]
        clf.intercepts_ = [b.copy() for b in net.biases]
        clf.loss_curve_ = []
        clf.set_params(max_iter=k)
        clf.fit(X, y)
    hist = train(net, X, y, epochs=k, lr=0.3, loss="bce")
    for ours, theirs in zip(net.weights + net.biases, clf.coefs_ + clf.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    # sklearn's loss_curve_ is the same mean BCE, at the weights before each update
    np.testing.assert_allclose(hist.loss, clf.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(net.forward(X)[:, 0], clf.predict_proba(X)[:, 1], rtol=1e-12)


def test_xor_tutorial001_classifies_all_four_points():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    for seed in range(3):
        # tutorial 001's init is randn * sqrt(2 / fan_in): he_normal
        net = MLP([2, 4, 1], "sigmoid", "sigmoid", initializer="he_normal", seed=seed)
        hist = train(net, X, y, epochs=5000, lr=1.0, loss="mse")
        np.testing.assert_array_equal(net.predict(X), y)
        assert hist.loss[-1] < 0.01 < hist.loss[0]


def test_quadrant_tutorial002_reaches_90_percent():
    X, y = quadrant()
    net = MLP([2, 16, 1], "relu", initializer="small_random", seed=42)
    hist = train(net, X, y, epochs=1000, lr=0.5)
    assert np.mean(net.predict(X) == y) >= 0.9
    assert hist.diverged_at is None


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu"])
def test_tutorial000_activations_learn(activation):
    X, y = make_classification(
        n_samples=500,
        n_features=3,
        n_redundant=0,
        n_informative=3,
        n_clusters_per_class=1,
        flip_y=0.1,
        class_sep=1.5,
        random_state=42,
    )
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=42)
    net = MLP([3, 4, 1], activation, initializer="small_random", seed=0)
    hist = train(net, Xtr, ytr, epochs=2000, lr=0.1)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert np.mean(net.predict(Xte) == yte) >= 0.8
    assert np.mean(net.predict(Xtr) == ytr) >= 0.8


def test_divergence_is_reported_with_epoch_and_finite_weights():
    X, y = quadrant()
    net = MLP([2, 16, 1], "relu", initializer="small_random", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning spam
        hist = train(net, X, y, epochs=1000, lr=1e3)
    assert hist.diverged_at is not None and 0 < hist.diverged_at < 1000
    assert len(hist.loss) == hist.diverged_at == len(hist.lr)
    assert hist.diverged_loss > 100 * hist.loss[0] or not np.isfinite(hist.diverged_loss)
    assert np.all(hist.loss <= 100 * hist.loss[0])
    assert all(np.all(np.isfinite(p)) for p in net.weights + net.biases)
    # the kept parameters are the last healthy ones: their loss is the last recorded one
    assert net.gradients(X, y)[0] == pytest.approx(hist.loss[-1], rel=1e-12)


def test_divergence_factor_and_nan_input():
    X, y = quadrant()
    net = MLP([2, 16, 1], "relu", initializer="he_normal", seed=0)
    hist = train(net, X, y, epochs=200, lr=5.0, divergence_factor=1.01)
    assert hist.diverged_at is not None
    Xn = X.copy()
    Xn[3, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = train(MLP([2, 4, 1], seed=0), Xn, y, epochs=10, lr=0.1)
    assert hist.diverged_at == 0 and len(hist.loss) == 0


def test_same_seed_bit_identical_different_seed_differs():
    X, y = quadrant()

    def run(seed, **kw):
        net = MLP([2, 8, 8, 1], "tanh", initializer="he_uniform", seed=seed)
        hist = train(net, X, y, epochs=60, lr=0.2, seed=seed, **kw)
        return net, hist

    for kw in ({}, {"batch_size": 32}):
        a, ha = run(7, **kw)
        b, hb = run(7, **kw)
        c, hc = run(8, **kw)
        assert all(np.array_equal(p, q) for p, q in zip(a.weights + a.biases, b.weights + b.biases))
        assert np.array_equal(ha.loss, hb.loss)
        assert not np.array_equal(a.weights[0], c.weights[0])
        assert not np.array_equal(ha.loss, hc.loss)


def test_global_rng_untouched():
    np.random.seed(123)
    before = np.random.get_state()
    X, y = quadrant()
    train(MLP([2, 4, 1], seed=1), X, y, epochs=5, lr=0.1, batch_size=16, seed=3)
    after = np.random.get_state()
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]


def test_minibatch_reshuffles_every_epoch():
    X, y = quadrant()
    seen = []

    def cb(epoch, loss, lr):
        seen.append((epoch, loss, lr))

    net = MLP([2, 8, 1], "relu", initializer="he_normal", seed=0)
    hist = train(net, X, y, epochs=30, lr=0.1, batch_size=50, seed=1, callback=cb)
    assert [s[0] for s in seen] == list(range(30))
    np.testing.assert_array_equal([s[1] for s in seen], hist.loss)
    assert hist.loss[-1] < hist.loss[0]
    other = MLP([2, 8, 1], "relu", initializer="he_normal", seed=0)
    h2 = train(other, X, y, epochs=30, lr=0.1, batch_size=50, seed=2)
    assert not np.array_equal(hist.loss, h2.loss)  # a different shuffle order


def test_callback_sees_the_weights_the_loss_was_measured_at():
    X, y = quadrant()
    net = MLP([2, 6, 1], "tanh", seed=0)
    checks = []

    def cb(epoch, loss, lr):
        checks.append(abs(net.gradients(X, y)[0] - loss))

    train(net, X, y, epochs=20, lr=0.5, callback=cb)
    assert max(checks) < 1e-13 and len(checks) == 20


def test_float32_end_to_end_agrees_with_float64():
    X, y = quadrant()
    nets = {}
    for dt in ("float32", "float64"):
        net = MLP([2, 16, 1], "tanh", initializer="xavier_uniform", seed=0, dtype=dt)
        hist = train(net, X, y, epochs=200, lr=0.5)
        nets[dt] = (net, hist)
    n32, h32 = nets["float32"]
    n64, h64 = nets["float64"]
    assert all(p.dtype == np.float32 for p in n32.weights + n32.biases)
    assert n32.forward(X).dtype == np.float32
    np.testing.assert_allclose(h32.loss, h64.loss, rtol=2e-4)
    np.testing.assert_allclose(n32.forward(X), n64.forward(X), atol=2e-4)


def test_l2_shrinks_weights_and_counts_in_loss():
    X, y = quadrant()
    a = MLP([2, 16, 1], "relu", initializer="he_normal", seed=0)
    b = MLP([2, 16, 1], "relu", initializer="he_normal", seed=0)
    l2 = 0.05
    loss_plain = a.gradients(X, y)[0]
    loss_l2 = a.gradients(X, y, l2=l2)[0]
    assert loss_l2 - loss_plain == pytest.approx(0.5 * l2 * sum((W**2).sum() for W in a.weights))
    train(a, X, y, epochs=300, lr=0.5)
    train(b, X, y, epochs=300, lr=0.5, l2=l2)
    assert sum((W**2).sum() for W in b.weights) < 0.8 * sum((W**2).sum() for W in a.weights)


def test_softmax_output_predicts_argmax():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)  # 3 classes
    net = MLP([2, 16, 3], "relu", "softmax", initializer="he_normal", seed=0)
    train(net, X, y, epochs=500, lr=0.5, loss="cross_entropy")
    p = net.forward(X)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-12)
    assert np.mean(net.predict(X) == y) > 0.9


def test_weights_assignable():
    net = MLP([2, 3, 1], "tanh", seed=0)
    net.weights = [np.ones((2, 3)), np.full((3, 1), 0.5)]
    net.biases = [np.zeros(3), np.array([0.1])]
    z = np.tanh(np.array([[1.0, 2.0]]) @ np.ones((2, 3))) @ np.full((3, 1), 0.5) + 0.1
    np.testing.assert_allclose(net.forward([[1.0, 2.0]]), 1 / (1 + np.exp(-z)))


def test_initializer_scales():
    rng = np.random.default_rng(0)
    assert np.std(INITIALIZERS["small_random"](200, 300, rng)) == pytest.approx(0.01, rel=0.02)
    assert np.std(INITIALIZERS["he_normal"](200, 300, rng)) == pytest.approx(np.sqrt(2 / 200), rel=0.02)
    assert np.std(INITIALIZERS["xavier_normal"](200, 300, rng)) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert np.abs(INITIALIZERS["xavier_uniform"](200, 300, rng)).max() <= np.sqrt(6 / 500)
    assert np.abs(INITIALIZERS["he_uniform"](200, 300, rng)).max() <= np.sqrt(6 / 200)
    net = MLP([3, 4, 1], initializer="small_random", seed=0)
    assert all(np.all(b == 0) for b in net.biases)


def test_schedules():
    st = {"lr": 0.5, "epochs": 100, "gamma": 0.5, "step_size": 10, "min_lr": 0.0}
    assert SCHEDULES["constant"](37, st) == 0.5
    assert SCHEDULES["step"](25, st) == 0.5 * 0.25
    assert SCHEDULES["exponential"](3, {"lr": 1.0, "gamma": 0.9}) == pytest.approx(0.729)
    assert SCHEDULES["cosine"](0, st) == 0.5 and SCHEDULES["cosine"](100, st) == pytest.approx(0)
    assert SCHEDULES["cosine"](50, st) == pytest.approx(0.25)
    # plateau: 100 epochs without a new best -> x 0.95, counter restarts
    state = {"lr": 1.0, "patience": 100, "factor": 0.95}
    rates = []
    for e in range(250):
        state["loss"] = 1.0 if e == 0 else 2.0
        rates.append(SCHEDULES["plateau"](e, state))
    assert rates[99] == 1.0 and rates[100] == pytest.approx(0.95)
    assert rates[199] == pytest.approx(0.95) and rates[200] == pytest.approx(0.95**2)


def test_plateau_schedule_in_training_decays_when_stuck():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    net = MLP([2, 4, 1], "sigmoid", seed=0)
    net.weights = [np.zeros((2, 4)), np.zeros((4, 1))]  # a stationary point: the loss never moves
    hist = train(
        net, X, y, epochs=400, loss="mse", lr={"name": "plateau", "lr": 1.0, "patience": 100, "factor": 0.95}
    )
    assert hist.lr[0] == 1.0 and hist.lr[-1] < 1.0
    assert set(np.round(hist.lr, 12)) <= {round(0.95**k, 12) for k in range(5)}


def stuck_rates(lr, epochs):
    """The rate of every epoch of a run whose loss never moves (a stationary point)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    net = MLP([2, 4, 1], "sigmoid", seed=0)
    net.weights = [np.zeros((2, 4)), np.zeros((4, 1))]
    return train(net, X, np.array([0, 1, 1, 0]), epochs=epochs, loss="mse", lr=lr).lr


def test_schedule_params_left_out_come_from_schedule_defaults():
    """A schedule given only {name, lr} (or None for a param) runs with SCHEDULE_DEFAULTS,
    the values the harness has always run (conf/lr_schedule/*.yaml pull in the same table)."""
    assert SCHEDULE_DEFAULTS == {
        "constant": {},
        "step": {"step_size": 500, "gamma": 0.5},
        "exponential": {"gamma": 0.999},
        "cosine": {"min_lr": 0.0},
        "plateau": {"patience": 100, "factor": 0.95},
    }
    assert set(SCHEDULE_DEFAULTS) == set(SCHEDULES)
    spec = {"name": "step", "lr": 1.0}
    rates = stuck_rates(spec, 1001)
    assert spec == {"name": "step", "lr": 1.0}  # the caller's dict is left alone
    assert rates[499] == 1.0 and rates[500] == 0.5 and rates[999] == 0.5 and rates[1000] == 0.25
    assert np.array_equal(
        stuck_rates({"name": "step", "lr": 1.0, "step_size": None, "gamma": None}, 1001), rates
    )
    assert stuck_rates({"name": "step", "lr": 1.0, "step_size": 10}, 21)[20] == 0.25  # given: used
    assert stuck_rates({"name": "exponential", "lr": 1.0}, 11)[10] == pytest.approx(0.999**10)
    cosine = stuck_rates({"name": "cosine", "lr": 1.0}, 100)
    assert cosine[0] == 1.0 and cosine[50] == pytest.approx(0.5) and cosine[-1] < 0.001  # to min_lr 0
    plateau = stuck_rates({"name": "plateau", "lr": 1.0}, 201)
    assert (
        plateau[99] == 1.0 and plateau[100] == pytest.approx(0.95) and plateau[200] == pytest.approx(0.95**2)
    )


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="valid choices"):
        MLP([2, 3, 1], "swish")
    with pytest.raises(ValueError, match="needs output_activation='sigmoid'"):
        MLP([2, 3, 1], output_activation="identity").gradients(np.zeros((2, 2)), [0, 1], "bce")
    X, y = quadrant(20)
    with pytest.raises(ValueError, match="epochs"):
        train(MLP([2, 3, 1]), X, y, epochs=0, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        train(MLP([2, 3, 1]), X, y, epochs=1, lr=-0.1)
