#!/usr/bin/env python
"""Per-epoch cost of full-batch training: shallownet's ``model.train`` against a bare
tutorial-style NumPy loop and scikit-learn's ``MLPClassifier`` (sgd, full batch).

Usage:
    python benchmarks/bench_model.py [--quick] [--out FILE]

Everything runs in one process with one BLAS thread (``threadpoolctl.threadpool_limits(1)``).
Within each repeat the contenders run one after another (in a rotated order), so machine
load hits all of them alike; the table reports the median over repeats of time / epochs.

All contenders of a workload start from the same initial weights (``MLP(...,
initializer="small_random", seed=0)``, zero biases). After training, every contender's
parameters are compared with the bare loop's: they do the same arithmetic, so float64 runs
must agree to < 1e-10 (float32 is shown for information only). A float64 mismatch makes the
script exit with status 1.

Workloads:
    W1  make_classification 400x3 (train split), 3-4-1 tanh, sigmoid output, BCE, lr 0.1
    W2  quadrant 200x2 (y = x0*x1 > 0), 2-16-1 relu, lr 0.5
    W3  quadrant 100,000x2, 2-64-1 relu, lr 0.5; our model in float64 and float32

Stacked (``--stacked`` runs only this part): ``train_stacked`` of R = 5 nets (init seeds
0..4) against the same 5 trained one at a time with ``train``, on W2's data and net for
2000 epochs, full batch and batch_size 50 (shuffle seeds 0..4). Reported per run as the
ratio stacked / one-at-a-time (median over interleaved repeats; target <= 0.6x); every
stacked run must equal its solo run bit for bit or the script exits with status 1.

scikit-learn is timed with ``fit`` on a ``warm_start=True`` estimator whose coefs_ /
intercepts_ were overwritten with the shared initial weights (after one untimed
``partial_fit`` that creates its state), with ``max_iter = epochs``: one ``fit`` call runs
all epochs, so its input validation is paid once per call like ours, rather than once per
epoch as E calls of ``partial_fit`` would.
"""

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import threadpoolctl
from sklearn import __version__ as sklearn_version
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from shallownet.model import MLP, train
from shallownet.model.mlp import train_stacked

TARGETS = [
    # (workload, contender, reference contender, max ratio)
    ("W1", "ours float64", "bare numpy", 1.0),
    ("W2", "ours float64", "bare numpy", 1.0),
    ("W3", "ours float64", "sklearn float64", 1.0),
    ("W3", "ours float32", "sklearn float64", 0.6),
]


# ------------------------------------------------------------------------------ data
def quadrant(n):
    X = np.random.default_rng(42).standard_normal((n, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X, y


def classification():
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
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=42)
    return np.ascontiguousarray(X_train, dtype=np.float64), y_train.astype(np.int64)


# ------------------------------------------------------------------------------ contenders
# Each contender: run(wl, E) -> (seconds for E epochs, [W1, b1, W2, b2] after training).
# Setup (copying the initial weights, building the estimator) is outside the timed region.


def run_ours(dtype):
    def run(wl, epochs):
        net = MLP(
            wl["sizes"],
            hidden_activation=wl["act"],
            output_activation="sigmoid",
            initializer="small_random",
            seed=0,
            dtype=dtype,
        )
        net.weights = [W.astype(dtype) for W in wl["W"]]
        net.biases = [b.astype(dtype) for b in wl["b"]]
        X, y, lr = wl["X"], wl["y"], wl["lr"]
        t0 = time.perf_counter()
        train(net, X, y, epochs=epochs, lr=lr, loss="bce")
        elapsed = time.perf_counter() - t0
        return elapsed, [net.weights[0], net.biases[0], net.weights[1], net.biases[1]]

    return run


def bare_loop(X, y, W1, b1, W2, b2, lr, epochs, act):
    """Tutorial 002's loop: fresh arrays every step, loss computed every epoch."""
    N = X.shape[0]
    losses = []
    for _ in range(epochs):
        # forward
        z1 = X @ W1 + b1
        a1 = np.tanh(z1) if act == "tanh" else np.maximum(0, z1)
        z2 = a1 @ W2 + b2
        p = 1 / (1 + np.exp(-z2))
        pc = np.clip(p, 1e-8, 1 - 1e-8)
        loss = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))
        # backward
        dz2 = p - y
        dW2 = a1.T @ dz2 / N
        db2 = dz2.sum(0, keepdims=True) / N
        da1 = dz2 @ W2.T
        dz1 = da1 * (1 - a1**2) if act == "tanh" else da1 * (z1 > 0)
        dW1 = X.T @ dz1 / N
        db1 = dz1.sum(0, keepdims=True) / N
        # update
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        losses.append(float(loss))
    return losses


def run_bare(wl, epochs):
    W1, W2 = (W.copy() for W in wl["W"])
    b1, b2 = (b.reshape(1, -1).copy() for b in wl["b"])
    X, y = wl["X"], wl["y"].reshape(-1, 1).astype(np.float64)
    t0 = time.perf_counter()
    bare_loop(X, y, W1, b1, W2, b2, wl["lr"], epochs, wl["act"])
    elapsed = time.perf_counter() - t0
    return elapsed, [W1, b1.ravel(), W2, b2.ravel()]


def run_sklearn(wl, epochs):
    X, y = wl["X"], wl["y"]
    clf = MLPClassifier(
        hidden_layer_sizes=(wl["sizes"][1],),
        activation=wl["act"],
        solver="sgd",
        batch_size=X.shape[0],
        momentum=0,
        nesterovs_momentum=False,
        alpha=0,
        learning_rate_init=wl["lr"],
        learning_rate="constant",
        shuffle=False,
        max_iter=epochs,
        tol=0,
        n_iter_no_change=10**9,
        early_stopping=False,
        warm_start=True,
        random_state=0,
    )
    clf.partial_fit(X, y, classes=[0, 1])  # untimed: creates coefs_, label binarizer, ...
    clf.coefs_ = [W.copy() for W in wl["W"]]
    clf.intercepts_ = [b.copy() for b in wl["b"]]
    t0 = time.perf_counter()
    clf.fit(X, y)  # warm start: keeps the weights above, runs max_iter = epochs epochs
    elapsed = time.perf_counter() - t0
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"sklearn ran {clf.n_iter_} epochs, expected {epochs}")
    return elapsed, [clf.coefs_[0], clf.intercepts_[0], clf.coefs_[1], clf.intercepts_[1]]


# ------------------------------------------------------------------------------ harness
def workloads(quick):
    X1, y1 = classification()
    X2, y2 = quadrant(200)
    X3, y3 = quadrant(100_000)
    small = dict(epochs=200, repeats=3) if quick else dict(epochs=1000, repeats=7)
    large = dict(epochs=5, repeats=3) if quick else dict(epochs=20, repeats=5)
    base = [("ours float64", run_ours("float64")), ("bare numpy", run_bare), ("sklearn float64", run_sklearn)]
    wls = [
        dict(
            name="W1",
            desc="make_classification 400x3, 3-4-1 tanh, lr 0.1",
            X=X1,
            y=y1,
            sizes=[3, 4, 1],
            act="tanh",
            lr=0.1,
            unit="us",
            contenders=base,
            **small,
        ),
        dict(
            name="W2",
            desc="quadrant 200x2, 2-16-1 relu, lr 0.5",
            X=X2,
            y=y2,
            sizes=[2, 16, 1],
            act="relu",
            lr=0.5,
            unit="us",
            contenders=base,
            **small,
        ),
        dict(
            name="W3",
            desc="quadrant 100000x2, 2-64-1 relu, lr 0.5",
            X=X3,
            y=y3,
            sizes=[2, 64, 1],
            act="relu",
            lr=0.5,
            unit="ms",
            contenders=base[:1] + [("ours float32", run_ours("float32"))] + base[1:],
            **large,
        ),
    ]
    for wl in wls:
        init = MLP(
            wl["sizes"],
            hidden_activation=wl["act"],
            output_activation="sigmoid",
            initializer="small_random",
            seed=0,
            dtype="float64",
        )
        wl["W"], wl["b"] = [W.copy() for W in init.weights], [b.copy() for b in init.biases]
    return wls


def timed(run, wl, epochs):
    gc.collect()
    gc.disable()
    try:
        return run(wl, epochs)
    finally:
        gc.enable()


def bench(wl):
    """Interleaved repeats; returns {contender: [seconds per epoch, ...]} and max weight
    differences against the bare loop."""
    names = [name for name, _ in wl["contenders"]]
    runs = dict(wl["contenders"])
    for name in names:  # warm-up (untimed): imports, caches, first-touch allocations
        timed(runs[name], wl, 2)
    times = {name: [] for name in names}
    diffs = {name: 0.0 for name in names}
    epochs = wl["epochs"]
    for r in range(wl["repeats"]):
        order = names[r % len(names) :] + names[: r % len(names)]
        params = {}
        for name in order:
            seconds, params[name] = timed(runs[name], wl, epochs)
            times[name].append(seconds / epochs)
        ref = params["bare numpy"]
        for name in names:
            d = max(float(np.max(np.abs(np.asarray(p, np.float64) - q))) for p, q in zip(params[name], ref))
            diffs[name] = max(diffs[name], d)
    return times, diffs


STACKED_R, STACKED_TARGET = 5, 0.6


def stacked_vs_solo(quick):
    """[(case, solo seconds per run, stacked seconds per run, bit-identical)], medians over
    repeats in which the two contenders alternate who goes first."""
    X, y = quadrant(200)
    epochs, repeats = (200, 3) if quick else (2000, 5)
    seeds = list(range(STACKED_R))
    out = []
    for case, batch_size in (("full batch", None), ("batch_size 50", 50)):
        kw = dict(epochs=epochs, lr=0.5, loss="bce", batch_size=batch_size)

        def solo(ms, _):
            t0 = time.perf_counter()
            for m, s in zip(ms, seeds):
                train(m, X, y, seed=s, **kw)
            return time.perf_counter() - t0

        def stacked(ms, _):
            t0 = time.perf_counter()
            train_stacked(ms, X, y, seeds=seeds, **kw)
            return time.perf_counter() - t0

        per_run = {solo: [], stacked: []}
        nets = {}
        for r in range(repeats):
            for f in (solo, stacked) if r % 2 == 0 else (stacked, solo):
                nets[f] = [MLP([2, 16, 1], "relu", initializer="small_random", seed=s) for s in seeds]
                per_run[f].append(timed(f, nets[f], None) / STACKED_R)
        same = all(
            np.array_equal(p, q)
            for a, b in zip(nets[solo], nets[stacked])
            for p, q in zip(a.weights + a.biases, b.weights + b.biases)
        )
        out.append(
            (
                f"{case}, {epochs} epochs",
                statistics.median(per_run[solo]),
                statistics.median(per_run[stacked]),
                same,
            )
        )
    return out


def stacked_report(quick):
    """Print the stacked-vs-solo lines; returns (lines, all bit-identical)."""
    lines, ok = [], True
    for case, solo_s, stacked_s, same in stacked_vs_solo(quick):
        ratio = stacked_s / solo_s
        ok &= same
        lines.append(
            f"- W2 {case}: one at a time {solo_s * 1e3:.1f} ms per run, stacked R={STACKED_R} "
            f"{stacked_s * 1e3:.1f} ms per run: {ratio:.2f}x (target <= {STACKED_TARGET}x -> "
            f"{'MET' if ratio <= STACKED_TARGET else 'NOT MET'}); "
            f"{'bit-identical' if same else 'DIFFERENT from the solo runs'}"
        )
    print("\nStacked vs one at a time (per run):\n" + "\n".join(lines), flush=True)
    return lines, ok


def environment():
    info = threadpoolctl.threadpool_info()
    blas = []
    for lib in info:
        if lib.get("user_api") != "blas":
            continue
        owner = (
            "numpy"
            if "numpy" in lib["filepath"]
            else ("scipy" if "scipy" in lib["filepath"] else os.path.basename(lib["filepath"]))
        )
        blas.append(f"{lib['internal_api']} {lib['version']} ({lib.get('architecture')}) [{owner}]")
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor() or "unknown"
    blas.sort(key=lambda s: not s.endswith("[numpy]"))  # numpy's own BLAS first
    return (
        f"numpy {np.__version__} | BLAS: {'; '.join(blas) or 'none found'} | "
        f"CPU: {cpu} ({os.cpu_count()} logical) | "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')} | "
        f"python {platform.python_version()}, scikit-learn {sklearn_version}"
    )


def fmt(x):
    return f"{x:.3g}" if x < 10 else f"{x:.1f}" if x < 1000 else f"{x:.0f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--out", metavar="FILE", help="also write the results as markdown")
    parser.add_argument("--stacked", action="store_true", help="only stacked vs one at a time")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    env = environment()
    print(env, flush=True)
    if args.stacked:
        with threadpoolctl.threadpool_limits(1):
            return 0 if stacked_report(args.quick)[1] else 1
    with threadpoolctl.threadpool_limits(1):
        threads = sorted({lib["num_threads"] for lib in threadpoolctl.threadpool_info()})
        print(f"threads inside the benchmark: {threads}", flush=True)
        results = []
        for wl in workloads(args.quick):
            t0 = time.perf_counter()
            times, diffs = bench(wl)
            print(
                f"{wl['name']} ({wl['desc']}): {wl['epochs']} epochs x {wl['repeats']} "
                f"repeats in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            results.append((wl, times, diffs))
        stacked_lines, stacked_ok = stacked_report(args.quick)

    med = {
        (wl["name"], name): statistics.median(ts) for wl, times, _ in results for name, ts in times.items()
    }
    rows = [
        "| workload | contender | median per epoch | ratio vs bare | ratio vs sklearn float64 |",
        "|---|---|---:|---:|---:|",
    ]
    spread, checks = [], []
    ok = True
    for wl, times, diffs in results:
        scale = 1e6 if wl["unit"] == "us" else 1e3
        w = wl["name"]
        for name, ts in times.items():
            m = med[(w, name)]
            rows.append(
                f"| {w} | {name} | {fmt(m * scale)} {wl['unit']} "
                f"| {m / med[(w, 'bare numpy')]:.2f}x "
                f"| {m / med[(w, 'sklearn float64')]:.2f}x |"
            )
            spread.append(
                f"{w} {name}: min {fmt(min(ts) * scale)}, max "
                f"{fmt(max(ts) * scale)} {wl['unit']}/epoch over {len(ts)} repeats"
            )
        for name, d in diffs.items():
            if name == "bare numpy":
                continue
            bad = "float64" in name and not d < 1e-10
            ok &= not bad
            checks.append(
                f"{w} {name} vs bare numpy after {wl['epochs']} epochs: max |dw| = "
                f"{d:.2e}{'  FAILED (>= 1e-10)' if bad else ''}"
            )
    target_lines = []
    for w, name, ref, limit in TARGETS:
        ratio = med[(w, name)] / med[(w, ref)]
        target_lines.append(
            f"- {w}: {name} <= {limit}x {ref}: {ratio:.2f}x -> {'MET' if ratio <= limit else 'NOT MET'}"
        )

    table = "\n".join(rows)
    print()
    print(table)
    print("\nSpread:\n" + "\n".join("  " + s for s in spread))
    print(
        "\nCorrectness (parameters after training, against the bare loop):\n"
        + "\n".join("  " + c for c in checks)
    )
    print("\nTargets:\n" + "\n".join(target_lines))
    if args.out:
        mode = "quick" if args.quick else "full"
        with open(args.out, "w") as fh:
            fh.write(
                f"Environment: {env}\n\nRun: bench_model.py ({mode}), one BLAS thread\n\n"
                f"{table}\n\nCorrectness:\n\n"
                + "\n".join(f"- {c}" for c in checks)
                + "\n\nTargets:\n\n"
                + "\n".join(target_lines)
                + "\n\nStacked vs one at a time (per run):\n\n"
                + "\n".join(stacked_lines)
                + "\n"
            )
        print(f"\nwrote {args.out}")
    return 0 if ok and stacked_ok else 1


if __name__ == "__main__":
    sys.exit(main())
