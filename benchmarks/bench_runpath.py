#!/usr/bin/env python
"""The run path's own costs (issue #27), measured on the real console scripts:

(a) the default single run (``shallownet-train``, tutorial 000's defaults, an existing store)
    against ``python -c "import mlflow"`` of the same venv, interleaved: target <= 1.5x;
(b) one more run of a study: the wall of ``-m experiment=tutorial000_activations`` with 5 and
    with 15 seeds (15 and 45 runs), on a fresh store each; slope per run: target <= 0.12 s.

Medians of ``--repeats`` (default 5; --quick 2). The load average is printed before and
after: these machines are shared, and their speed drifts.

    .venv/bin/python benchmarks/bench_runpath.py [--quick] [--out FILE]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
OUT = []


def emit(line=""):
    OUT.append(line)
    print(line, flush=True)


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def env():
    drop = ("SHALLOWNET_", "MLFLOW_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def wall(args, cwd):
    """Seconds from launch to exit of ``args``; exits the bench if it fails."""
    t0 = time.perf_counter()
    res = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"bench_runpath: {' '.join(map(str, args))} failed ({res.returncode})\n{res.stderr[-2000:]}")
    return seconds


def med(xs):
    return statistics.median(xs)


def single_run(tmp, repeats):
    uri = f"sqlite:///{tmp / 'single.db'}"
    train = [str(BIN / "shallownet-train"), f"tracking.uri={uri}"]
    wall(train, tmp)  # the store exists before the first timed run
    runs, imports = [], []
    for _ in range(repeats):
        imports.append(wall([str(BIN / "python"), "-c", "import mlflow"], tmp))
        runs.append(wall(train, tmp))
    ratio = med(runs) / med(imports)
    emit("### (a) The default single run against `import mlflow`, interleaved")
    emit()
    emit("| | median (s) | min-max (s) |")
    emit("|---|---:|---:|")
    emit(
        f"| `shallownet-train tracking.uri=<existing store>` | {med(runs):.2f} | {min(runs):.2f}-{max(runs):.2f} |"
    )
    emit(f'| `python -c "import mlflow"` | {med(imports):.2f} | {min(imports):.2f}-{max(imports):.2f} |')
    emit()
    emit(f"Ratio: **{ratio:.2f}x** (target <= 1.5x), {repeats} of each.")
    emit()
    return ratio


def study(tmp, seeds, i):
    work = tmp / f"study-{seeds}-{i}"
    work.mkdir()
    args = [
        str(BIN / "shallownet-train"),
        "-m",
        "experiment=tutorial000_activations",
        f"seed=range({seeds})",
        f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
    ]
    return wall(args, work)


def slope(tmp, repeats):
    small, large = [], []
    for i in range(repeats):
        small.append(study(tmp, 5, i))
        large.append(study(tmp, 15, i))
    per_run = (med(large) - med(small)) / 30
    emit("### (b) One more run of a study")
    emit()
    emit("`shallownet-train -m experiment=tutorial000_activations seed=range(K)` on a fresh store, in turn.")
    emit()
    emit("| runs | median wall (s) | min-max (s) |")
    emit("|---:|---:|---:|")
    emit(f"| 15 (K=5) | {med(small):.2f} | {min(small):.2f}-{max(small):.2f} |")
    emit(f"| 45 (K=15) | {med(large):.2f} | {min(large):.2f}-{max(large):.2f} |")
    emit()
    emit(f"Slope: **{per_run:.3f} s** per run (target <= 0.12 s), {repeats} of each.")
    emit()
    return per_run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    emit(f"## Run path ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {load()})")
    emit()
    with tempfile.TemporaryDirectory(prefix="bench-runpath-") as tmp:
        tmp = Path(tmp)
        single_run(tmp, repeats)
        slope(tmp, repeats)
    emit(f"Load after: {load()}.")
    if args.out:
        Path(args.out).write_text("\n".join(OUT) + "\n")


if __name__ == "__main__":
    main()
