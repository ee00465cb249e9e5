#!/usr/bin/env python
"""Harness benchmark: what recording a shallownet run costs next to training it.

Drives the real ``shallownet-train`` console script with ``SHALLOWNET_PROFILE=1`` (each run
prints ``shallownet-profile: {json}`` with seconds per phase) and measures:

  (a) the in-process cost of recording one run on the embedded sqlite store, warm
      (a 6-job sweep with hydra.launcher.n_jobs=1, jobs 2..6), next to its training time;
  (b) the wall time of one fresh ``shallownet-train`` process on an existing store (3x),
      split into the profiled phases and "imports + Hydra start-up + exit";
  (c) the tutorial000_activations sweep (15 jobs, joblib n_jobs=2) against the pure
      compute of its 15 trainings in one process, plus a timeline of the sweep;
  (d) the same small sweep as (a) through an MLflow tracking server (PostgreSQL backend)
      and again on sqlite, back to back;
  (e) the study of (c) with 20 seeds (60 jobs): the marginal cost of one more job.

Everything is written under a temporary directory (stores, Hydra output, server); nothing
goes to outputs/.

    python benchmarks/bench_harness.py                 # full run, ~6-8 min on 2 cores
    python benchmarks/bench_harness.py --quick         # smaller sweeps, 1 repeat
    python benchmarks/bench_harness.py --skip-server   # no (d)
    python benchmarks/bench_harness.py --out harness.md
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = (
    "config_and_data",
    "import_mlflow",
    "store_run_params",
    "train",
    "metrics",
    "curves_config_env",
    "plots",
    "artifacts",
    "model",
    "end_run",
    "gc",
)
NOT_RECORDING = ("config_and_data", "train")
RECORDING = tuple(p for p in PHASES if p not in NOT_RECORDING)
PROFILE_PREFIX = "shallownet-profile: "
JOB_LINE = re.compile(r"^\[\d+/(\d+|\?)\] ")  # a sweep job's outcome line

TARGET_RECORD = 0.1  # (a) s of recording per run, warm, sqlite (issue #14)
TARGET_PROCESS = 5.0  # (b) s wall per shallownet-train process
TARGET_SWEEP_X = 2.0  # (c) sweep wall <= this x pure compute, run after run in one process
TARGET_JOB_OVH = 0.5  # (c) s overhead per job
# (f) issue #14: a study's sweep wall <= this x its compute, the children's train_seconds
# summed over the 2 workers (sum / 2), on an existing store
TARGET_STUDY_X = {"tutorial000_activations": 3.0, "tutorial002_quadrant": 2.0}

DATA = {
    "name": "classification",
    "seed": 42,
    "n_samples": 500,
    "n_features": 3,
    "class_sep": 1.5,
    "flip_y": 0.1,
    "test_size": 0.2,
    "standardize": False,
}
ACTIVATIONS = ("tanh", "relu", "leaky_relu")  # tutorial000_activations
EPOCHS = 2000
LR = 0.1

OUT = []  # markdown lines, printed as they come and written by --out


def emit(line=""):
    OUT.append(line)
    print(line, flush=True)


def table(headers, rows, right=None):
    """A markdown table; columns listed in ``right`` (indices) are right-aligned."""
    right = set(range(1, len(headers))) if right is None else set(right)
    emit("| " + " | ".join(headers) + " |")
    emit("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    for r in rows:
        emit("| " + " | ".join(str(c) for c in r) + " |")
    emit()


def s(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}f} s"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def tool(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    venv = ROOT / ".venv" / "bin" / name
    if venv.exists():
        return str(venv)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench_harness: {name} not found (install the project: make venv)")
    return found


# ----------------------------------------------------------------------------- processes


class Result:
    def __init__(self, args, rc, wall, lines):
        self.args, self.rc, self.wall, self.lines = args, rc, wall, lines

    def stream(self, name):
        return [(t, text) for t, n, text in self.lines if n == name]

    def profiles(self):
        """[(arrival time, {phase: seconds})] in arrival order."""
        out = []
        for t, text in self.stream("stderr"):
            if text.startswith(PROFILE_PREFIX):
                out.append((t, json.loads(text[len(PROFILE_PREFIX) :])))
        return out

    def first(self, stream, prefix):
        for t, text in self.stream(stream):
            if text.startswith(prefix):
                return t
        return None

    def tail(self, n=25):
        return "\n".join(f"  [{name}] {text}" for _, name, text in self.lines[-n:])


def clean_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHALLOWNET_", "MLFLOW_")) and k != "HYDRA_FULL_ERROR"
    }
    env.update(extra)
    return env


def run_proc(args, cwd, timeout=900, **env):
    """Run ``args``; every output line is kept with its arrival time (s since launch)."""
    lines = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        args,
        cwd=cwd,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        start_new_session=True,
    )

    def pump(stream, name):
        for line in stream:
            t = time.perf_counter() - t0
            with lock:
                lines.append((t, name, line.rstrip("\n")))

    threads = [
        threading.Thread(target=pump, args=(p.stdout, "stdout"), daemon=True),
        threading.Thread(target=pump, args=(p.stderr, "stderr"), daemon=True),
    ]
    for th in threads:
        th.start()
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)  # our own child's process group only
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        rc = "timeout"
    wall = time.perf_counter() - t0
    for th in threads:
        th.join(10)
    lines.sort(key=lambda x: x[0])
    return Result(args, rc, wall, lines)


def check(res, n_profiles, what):
    profs = res.profiles()
    if res.rc != 0 or len(profs) != n_profiles:
        sys.exit(
            f"bench_harness: {what} failed (exit {res.rc}, {len(profs)}/{n_profiles} "
            f"profile lines)\n  {' '.join(res.args)}\n{res.tail()}"
        )
    bad = [text for _, text in res.stream("stdout") if JOB_LINE.match(text) and ": FINISHED " not in text]
    if bad:
        sys.exit(f"bench_harness: {what}: jobs did not finish:\n" + "\n".join(bad))
    return profs


def sweep(uri, sweep_dir, cwd, overrides, n_profiles, what):
    args = [tool("shallownet-train"), "-m", *overrides, f"tracking.uri={uri}", f"hydra.sweep.dir={sweep_dir}"]
    res = run_proc(args, cwd, SHALLOWNET_PROFILE="1")
    return res, check(res, n_profiles, what)


def create_store(uri, cwd):
    """Create the sqlite store and the experiment (what the first-ever run does) in a
    separate process; returns its wall time."""
    code = (
        "import sys; from shallownet.record import tracking; "
        "tracking.configure(sys.argv[1]); tracking.ensure_experiment(sys.argv[1], 'shallownet')"
    )
    res = run_proc([sys.executable, "-c", code, uri], cwd)
    if res.rc != 0:
        sys.exit(f"bench_harness: creating {uri} failed\n{res.tail()}")
    return res.wall


def recording(prof):
    return sum(prof.get(p, 0.0) for p in RECORDING)


def phase_rows(groups):
    """Rows phase x group (median over the group's profiles), then recording/total."""
    rows = []
    for p in PHASES:
        if any(p in pr for profs in groups.values() for pr in profs):
            rows.append([p] + [s(med([pr.get(p, 0.0) for pr in profs])) for profs in groups.values()])
    rows.append(
        ["**recording** (all but train, config_and_data)"]
        + [f"**{s(med([recording(pr) for pr in profs]))}**" for profs in groups.values()]
    )
    rows.append(
        ["total of phases"] + [s(med([sum(pr.values()) for pr in profs])) for profs in groups.values()]
    )
    return rows


# ----------------------------------------------------------------------------- environment


def environment():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vers = {}
    for pkg in ("numpy", "mlflow", "hydra-core", "hydra-joblib-launcher"):
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            vers[pkg] = "n/a"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return (
        f"Environment: CPU: {cpu} ({os.cpu_count()} logical cores) | numpy {vers['numpy']} | "
        f"mlflow {vers['mlflow']} | hydra-core {vers['hydra-core']} | "
        f"hydra-joblib-launcher {vers['hydra-joblib-launcher']} | "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE') or 'unset'} | "
        f"python {platform.python_version()} | load average {load}"
    )


# ----------------------------------------------------------------------------- (a)


def warm_sweep_overrides(n_jobs):
    return [
        "experiment=tutorial000_activations",
        f"seed=range({n_jobs})",
        "activation=tanh",
        "hydra.launcher.n_jobs=1",
    ]


def bench_a(tmp, n_jobs):
    emit("### (a) Recording one run, warm, sqlite store")
    emit()
    emit(
        f"`shallownet-train -m experiment=tutorial000_activations seed=range({n_jobs}) "
        f"activation=tanh hydra.launcher.n_jobs=1` (one process: joblib runs the jobs in "
        f"sequence in the launching process), fresh sqlite store, 2000 epochs per job. "
        f"Median per phase over jobs 2..{n_jobs}; job 1 shown apart (first use of pandas, "
        f"matplotlib, sklearn.metrics, pyfunc in the process)."
    )
    emit()
    uri = f"sqlite:///{tmp / 'a' / 'mlflow.db'}"
    res, profs = sweep(
        uri, tmp / "a" / "multirun", tmp, warm_sweep_overrides(n_jobs), n_jobs, "(a) warm sqlite sweep"
    )
    profs = [p for _, p in profs]
    warm = profs[1:]
    table(["phase", "job 1", f"median jobs 2..{n_jobs}"], phase_rows({"job 1": profs[:1], "warm": warm}))
    rec = med([recording(p) for p in warm])
    train = med([p.get("train", 0.0) for p in warm])
    emit(
        f"Per-job recording cost (jobs 2..{n_jobs}): "
        + ", ".join(f"{recording(p):.3f}" for p in warm)
        + " s. "
        f"Sweep process wall: {res.wall:.1f} s."
    )
    emit()
    return {"uri": uri, "record": rec, "train": train, "warm": warm, "wall": res.wall}


# ----------------------------------------------------------------------------- (b)


def bench_b(tmp, uri, repeats):
    emit("### (b) One fresh `shallownet-train` process, existing store")
    emit()
    emit(
        f"`SHALLOWNET_PROFILE=1 shallownet-train tracking.uri=<store of (a)>` (tutorial 000 "
        f"defaults: tanh, seed 0, 2000 epochs), {repeats} runs one after the other. "
        f'"imports + Hydra start-up + exit" = wall - sum of the profiled phases.'
    )
    emit()
    walls, profs = [], []
    for i in range(repeats):
        args = [tool("shallownet-train"), f"tracking.uri={uri}", f"hydra.run.dir={tmp / 'b' / f'run{i}'}"]
        res = run_proc(args, tmp, SHALLOWNET_PROFILE="1")
        prof = check(res, 1, f"(b) single run {i + 1}")[0][1]
        walls.append(res.wall)
        profs.append(prof)
    rows = [
        [
            f"run {i + 1}",
            s(w, 2),
            s(sum(p.values()), 2),
            s(w - sum(p.values()), 2),
            s(p.get("train"), 2),
            s(recording(p), 2),
        ]
        for i, (w, p) in enumerate(zip(walls, profs))
    ]
    rows.append(
        [
            "**median**",
            f"**{s(med(walls), 2)}**",
            s(med([sum(p.values()) for p in profs]), 2),
            s(med([w - sum(p.values()) for w, p in zip(walls, profs)]), 2),
            s(med([p.get("train") for p in profs]), 2),
            s(med([recording(p) for p in profs]), 2),
        ]
    )
    table(["", "wall", "sum of phases", "imports + Hydra start-up + exit", "train", "recording"], rows)
    emit("Median per phase:")
    emit()
    rows = phase_rows({"median": profs})
    rows.insert(
        0,
        [
            "imports + Hydra start-up + exit (wall - phases)",
            s(med([w - sum(p.values()) for w, p in zip(walls, profs)])),
        ],
    )
    rows.append(["wall", s(med(walls))])
    table(["phase", f"median of {repeats}"], rows)

    # fixed cost of the imports alone, each in a fresh interpreter
    probes = [
        ("python -c pass", "pass"),
        ("import shallownet.train (hydra, omegaconf, numpy, model)", "import shallownet.train"),
        ("import mlflow", "import mlflow"),
        (
            "import shallownet.train, mlflow, pandas, matplotlib.pyplot, sklearn.metrics",
            "import shallownet.train, mlflow, pandas, matplotlib; matplotlib.use('Agg'); "
            "import matplotlib.pyplot, sklearn.metrics",
        ),
    ]
    rows = []
    for label, code in probes:
        ts = []
        for _ in range(repeats):
            res = run_proc([sys.executable, "-c", code], tmp)
            if res.rc != 0:
                sys.exit(f"bench_harness: probe {code!r} failed\n{res.tail()}")
            ts.append(res.wall)
        rows.append([label, s(med(ts), 2)])
    emit(f"Fixed cost of imports, fresh interpreter each time (median of {repeats}):")
    emit()
    table(["python -c ...", "wall"], rows)
    return {"wall": med(walls), "profs": profs, "walls": walls}


# ----------------------------------------------------------------------------- (c)


def pure_compute(seeds, with_eval):
    """Seconds of the sweep's trainings in this process with one BLAS thread, without MLflow;
    optionally with the per-epoch test evaluation and train accuracy that shallownet.train
    does."""
    from threadpoolctl import threadpool_limits

    from shallownet import datasets
    from shallownet.fit import Curves, _recorder  # the per-epoch evaluation runs do
    from shallownet.model import MLP, train

    split = datasets.load(dict(DATA))
    total = 0.0
    for act in ACTIVATIONS:
        for seed in seeds:
            net = MLP([3, 4, 1], act, "sigmoid", "small_random", seed=seed)
            cb = None
            if with_eval:
                curves = Curves(EPOCHS)
                curves.allocate()
                cb = _recorder(net, split, "bce", curves)
            with threadpool_limits(1):
                t0 = time.perf_counter()
                train(net, split.X_train, split.y_train, epochs=EPOCHS, lr=LR, callback=cb)
                total += time.perf_counter() - t0
    return total


def bench_c(tmp, n_seeds, repeats, n_parallel=2):
    n_jobs = len(ACTIVATIONS) * n_seeds
    over = ["experiment=tutorial000_activations"] + ([] if n_seeds == 5 else [f"seed=range({n_seeds})"])
    emit(
        f"### (c) The tutorial000_activations sweep ({n_jobs} jobs, joblib n_jobs={n_parallel}) vs pure compute"
    )
    emit()
    emit(
        f"`shallownet-train -m {' '.join(over)}` on an existing, empty sqlite store (created "
        f"beforehand in a separate process, timed apart). Pure compute: the same {n_jobs} "
        f"trainings (`MLP([3,4,1], act, 'sigmoid', 'small_random', seed)`, "
        f"`train(..., epochs=2000, lr=0.1)`) one after the other in this process with one "
        f'BLAS thread, no MLflow; "with per-epoch eval" adds the callback that '
        f"`shallownet.train` passes (test loss/accuracy and train accuracy every epoch, "
        f"using its `Evaluator`). All three are measured {repeats} times, in turn; the tables "
        f"give the medians, and the timeline and phases come from the sweep of median wall time."
    )
    emit()
    seeds = range(n_seeds)
    pures, pure_evals, stores, sweeps = [], [], [], []
    for i in range(repeats):
        pures.append(pure_compute(seeds, with_eval=False))
        pure_evals.append(pure_compute(seeds, with_eval=True))
        uri = f"sqlite:///{tmp / 'c' / f'run{i}' / 'mlflow.db'}"
        stores.append(create_store(uri, tmp))
        sweeps.append(
            sweep(uri, tmp / "c" / f"run{i}" / "multirun", tmp, over, n_jobs, f"(c) full sweep {i + 1}")
        )
    pure, pure_eval, t_store = med(pures), med(pure_evals), med(stores)
    res, profs = sorted(sweeps, key=lambda r: r[0].wall)[len(sweeps) // 2]
    wall = res.wall
    emit(
        f"Sweep walls: {', '.join(f'{r.wall:.2f}' for r, _ in sweeps)} s; pure compute: "
        f"{', '.join(f'{x:.2f}' for x in pures)} s; with eval: "
        f"{', '.join(f'{x:.2f}' for x in pure_evals)} s."
    )
    emit()
    # each job's interval in the sweep process's clock: it ends when its profile line
    # arrives and lasted the sum of its phases (run() from its first line to the print)
    jobs = sorted(((t - sum(p.values()), t, p) for t, p in profs), key=lambda j: j[0])
    cold = jobs[:n_parallel]  # first job of each loky worker (imports mlflow etc.)
    warm = jobs[n_parallel:]
    t_cb = res.first("stdout", "shallownet: sweep ")
    busy = sum(end - start for start, end, _ in jobs)
    span = max(end for _, end, _ in jobs) - min(start for start, _, _ in jobs)

    ratio = wall / pure
    ovh = (wall - pure) / n_jobs
    ovh_eval = (wall - pure_eval) / n_jobs
    ovh_cores = (wall * n_parallel - pure) / n_jobs
    rows = [
        ["sweep wall (process launch to exit), median", s(wall, 2), ""],
        [f"pure compute, {n_jobs} x model.train", s(pure, 2), f"{pure / n_jobs:.3f} s per run"],
        ["pure compute with per-epoch eval", s(pure_eval, 2), f"{pure_eval / n_jobs:.3f} s per run"],
        ["sweep wall / pure compute", f"**{ratio:.2f}x**", f"target <= {TARGET_SWEEP_X:g}x"],
        [f"overhead per job = (wall - pure) / {n_jobs}", f"**{s(ovh)}**", f"target <= {TARGET_JOB_OVH:g} s"],
        ["same, against pure compute with eval", s(ovh_eval), ""],
        [
            f"core-seconds overhead per job = (wall x {n_parallel} - pure) / {n_jobs}",
            s(ovh_cores),
            "both cores charged for the whole wall",
        ],
        ["creating the empty store + experiment (separate process, not in wall)", s(t_store, 2), ""],
    ]
    table(["", "value", "note"], rows, right=[1])

    emit("Timeline of the sweep process (times from launch):")
    emit()
    rows = []
    if t_cb is not None:
        rows.append(
            ["launch -> sweep callback done (Hydra start-up, imports incl. mlflow, parent run)", s(t_cb, 2)]
        )
        rows.append(
            [
                "callback done -> first jobs start (Hydra's validation of every job's "
                "config, worker start, Hydra job set-up), median of the "
                "cold jobs",
                s(med([start - t_cb for start, _, _ in cold]), 2),
            ]
        )
    rows.append([f"jobs running (first start -> last end), {n_parallel} workers", s(span, 2)])
    rows.append(["sum of job times (busy worker-seconds)", s(busy, 2)])
    rows.append(
        [f"idle worker-seconds in that span ({n_parallel} x span - busy)", s(n_parallel * span - busy, 2)]
    )
    rows.append(
        [
            "last job end -> exit (parent run closed, summary, shutdown)",
            s(wall - max(end for _, end, _ in jobs), 2),
        ]
    )
    gaps = worker_gaps(jobs, n_parallel)
    rows.append(
        [
            "Hydra job set-up: a worker's job end -> its next job's start (job config "
            "composed, .hydra/ files, logging, loky hand-over), median",
            s(med(gaps)),
        ]
    )
    table(["", "seconds"], rows, right=[1])

    emit(
        f"Phases of the jobs (median): the {len(cold)} cold jobs (first job of each worker) "
        f"and the {len(warm)} warm ones:"
    )
    emit()
    table(
        ["phase", f"cold ({len(cold)})", f"warm ({len(warm)})"],
        phase_rows({"cold": [p for _, _, p in cold], "warm": [p for _, _, p in warm]}),
    )
    return {"wall": wall, "pure": pure, "pure_eval": pure_eval, "ratio": ratio, "ovh": ovh, "n_jobs": n_jobs}


def worker_gaps(jobs, n_workers):
    """Seconds between a job's end and the start of the next job of the same worker. Jobs are
    (start, end, phases) in start order; each goes to the worker that freed up last before it
    started (loky hands a worker its next job as soon as it is free)."""
    free = [None] * n_workers  # end time of each worker's last job
    gaps = []
    for start, end, _ in jobs:
        idle = [i for i, t in enumerate(free) if t is None or t <= start]
        if not idle:
            continue  # overlapping clocks: cannot tell which worker; leave it out
        i = max(idle, key=lambda k: -1.0 if free[k] is None else free[k])
        if free[i] is not None:  # not the worker's first job
            gaps.append(start - free[i])
        free[i] = end
    return gaps


# ----------------------------------------------------------------------------- (e)


def bench_e(tmp, c, n_seeds):
    """The study of (c) with more seeds: what one more job costs once the fixed costs are paid."""
    n_jobs = len(ACTIVATIONS) * n_seeds
    over = ["experiment=tutorial000_activations", f"seed=range({n_seeds})"]
    emit(f"### (e) A larger sweep: {n_jobs} jobs")
    emit()
    emit(
        f"`shallownet-train -m {' '.join(over)}` on an existing, empty sqlite store, against the "
        f"pure compute of its {n_jobs} trainings as in (c). The marginal cost of a job is the "
        f"difference from (c) divided by the {n_jobs - c['n_jobs']} extra jobs."
    )
    emit()
    pure = pure_compute(range(n_seeds), with_eval=False)
    uri = f"sqlite:///{tmp / 'e' / 'mlflow.db'}"
    create_store(uri, tmp)
    res, _ = sweep(uri, tmp / "e" / "multirun", tmp, over, n_jobs, f"(e) {n_jobs}-job sweep")
    extra = n_jobs - c["n_jobs"]
    marg_wall = (res.wall - c["wall"]) / extra
    marg_pure = (pure - c["pure"]) / extra
    rows = [
        ["sweep wall", s(c["wall"], 2), s(res.wall, 2), s(marg_wall)],
        ["pure compute", s(c["pure"], 2), s(pure, 2), s(marg_pure)],
        [
            "sweep wall / pure compute",
            f"{c['ratio']:.2f}x",
            f"{res.wall / pure:.2f}x",
            f"{marg_wall / marg_pure:.2f}x",
        ],
        [
            "overhead per job = (wall - pure) / jobs",
            s(c["ovh"]),
            s((res.wall - pure) / n_jobs),
            s(marg_wall - marg_pure),
        ],
    ]
    table(["", f"(c): {c['n_jobs']} jobs", f"{n_jobs} jobs", "per extra job"], rows)
    return {"wall": res.wall, "pure": pure, "n_jobs": n_jobs, "marg_wall": marg_wall, "marg_pure": marg_pure}


# ----------------------------------------------------------------------------- (f)


def children_train_seconds(uri):
    """The train_seconds of every child run in the store, from MLflow."""
    from shallownet.record import tracking

    client = tracking.connect(uri)
    runs = tracking.search_all(client, [tracking.ensure_experiment(uri, "shallownet", client)])
    return [r.data.metrics["train_seconds"] for r in runs if "train_seconds" in r.data.metrics]


def bench_f(tmp, repeats, n_parallel=2):
    """Issue #14's ratios: each study's sweep wall against its own compute."""
    emit("### (f) Study sweeps against their own compute (issue #14)")
    emit()
    emit(
        f"`shallownet-train -m experiment=NAME` ({n_parallel} jobs at once) on an existing, empty "
        f"sqlite store, {repeats} times each, in turn. Compute = the sum of the children's "
        f"`train_seconds` (read from the store) / {n_parallel} workers; ratio = wall / compute. "
        "Medians."
    )
    emit()
    rows, out = [], {}
    for name, target in TARGET_STUDY_X.items():
        walls, computes = [], []
        for i in range(repeats):
            uri = f"sqlite:///{tmp / 'f' / f'{name}{i}' / 'mlflow.db'}"
            create_store(uri, tmp)
            res = run_proc([tool("shallownet-train"), "-m", f"experiment={name}", f"tracking.uri={uri}"], tmp)
            if res.rc != 0:
                sys.exit(f"bench_harness: (f) {name} failed (exit {res.rc})\n{res.tail()}")
            seconds = children_train_seconds(uri)
            walls.append(res.wall)
            computes.append(sum(seconds) / n_parallel)
        wall, compute = med(walls), med(computes)
        out[name] = {
            "wall": wall,
            "compute": compute,
            "ratio": wall / compute,
            "target": target,
            "jobs": len(seconds),
        }
        rows.append(
            [
                name,
                str(len(seconds)),
                s(wall, 2),
                s(compute, 2),
                f"**{wall / compute:.2f}x**",
                f"<= {target:g}x",
            ]
        )
    table(["study", "jobs", "sweep wall", "compute", "ratio", "target"], rows, right=[1, 2, 3])
    return out


# ----------------------------------------------------------------------------- (d)


def bench_d(tmp, n_jobs):
    from shallownet.server import running_server

    emit("### (d) Tracking server (PostgreSQL backend) vs embedded sqlite store")
    emit()
    emit(
        f"The sweep of (a) ({n_jobs} jobs, tanh, seeds 0..{n_jobs - 1}, n_jobs=1, one process), "
        f'first against `shallownet.server.running_server(tmp, backend="postgres")` (MLflow '
        f"server on loopback, PostgreSQL store, artifacts served by the server), then again on "
        f"a fresh sqlite store, back to back. Medians over jobs 2..{n_jobs}."
    )
    emit()
    t0 = time.perf_counter()
    with running_server(tmp / "server", backend="postgres") as uri:
        t_start = time.perf_counter() - t0
        res_srv, prof_srv = sweep(
            uri, tmp / "d" / "srv-multirun", tmp, warm_sweep_overrides(n_jobs), n_jobs, "(d) server sweep"
        )
    uri_sql = f"sqlite:///{tmp / 'd' / 'mlflow.db'}"
    res_sql, prof_sql = sweep(
        uri_sql, tmp / "d" / "sql-multirun", tmp, warm_sweep_overrides(n_jobs), n_jobs, "(d) sqlite sweep"
    )
    srv = [p for _, p in prof_srv][1:]
    sql = [p for _, p in prof_sql][1:]
    rows = phase_rows({"server": srv, "sqlite": sql})
    rows.append(["sweep process wall", s(res_srv.wall, 2), s(res_sql.wall, 2)])
    table(["phase", "server (postgres)", "sqlite"], rows)
    rec_srv = med([recording(p) for p in srv])
    rec_sql = med([recording(p) for p in sql])
    emit(
        f"Recording per run: server {rec_srv:.3f} s, sqlite {rec_sql:.3f} s, difference "
        f"{rec_srv - rec_sql:+.3f} s per run ({rec_srv / rec_sql:.2f}x). Server start-up "
        f"(PostgreSQL + MLflow server, not counted above): {t_start:.1f} s."
    )
    emit()
    return {"srv": rec_srv, "sql": rec_sql, "start": t_start}


# ----------------------------------------------------------------------------- main


NEW_STORE = """
import sys, time
from pathlib import Path
how, folder = sys.argv[1], Path(sys.argv[2])
import mlflow
from mlflow import MlflowClient
from shallownet.record import schema
t = time.perf_counter()
if how == "template":
    schema.ensure(folder / "mlflow.db")
    print(time.perf_counter() - t)  # the store made, whole
    t = time.perf_counter()
MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
print(time.perf_counter() - t)  # mlflow: made and opened; template: the copy opened
"""


def bench_g(tmp, repeats):
    """A new sqlite store, its imports aside: MLflow creating it itself (its migrations) against
    shallownet's copy of the migrated template (the template built beforehand, not timed), each
    in a fresh process, in turn."""
    cache = tmp / "g-cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    rows = {
        "MLflow creates it (migrations) and opens it": [],
        "shallownet copies the template": [],
        "MlflowClient opens the copy": [],
    }
    mlflow_made, copied, opened = rows.values()
    warm = tmp / "g-warm"
    warm.mkdir()
    run_proc([sys.executable, "-c", NEW_STORE, "template", str(warm)], tmp, **env)  # builds it
    for i in range(repeats):
        for how in ("mlflow", "template"):
            folder = tmp / f"g-{how}-{i}"
            folder.mkdir()
            res = run_proc([sys.executable, "-c", NEW_STORE, how, str(folder)], tmp, **env)
            if res.rc != 0:
                sys.exit(f"bench_harness: a new store ({how}) failed\n{res.tail()}")
            out = [float(text) for _, text in res.stream("stdout")]
            if how == "mlflow":
                mlflow_made.append(out[0])
            else:
                copied.append(out[0])
                opened.append(out[1])
    emit("### (g) A new store (imports aside, each in a fresh process)")
    emit()
    emit(
        table(
            ["step", f"seconds (median of {repeats})", "min", "max"],
            [[step, s(med(t)), s(min(t)), s(max(t))] for step, t in rows.items()],
            right={1, 2, 3},
        )
    )
    emit()
    return {"mlflow": med(mlflow_made), "template": med(copied), "open": med(opened)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sweeps, 1 repeat")
    ap.add_argument("--skip-server", action="store_true", help="skip (d), the tracking server")
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args(argv)

    small = 4 if args.quick else 6  # jobs of the warm sweeps (a), (d)
    repeats = 1 if args.quick else 3  # (b)
    seeds = 2 if args.quick else 5  # (c): 3 activations x seeds

    t_all = time.perf_counter()
    cmd = "python benchmarks/bench_harness.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    emit(f"Command: `{cmd}` ({datetime.datetime.now().strftime('%Y-%m-%d %H:%M')})")
    emit()
    emit(environment())
    emit()
    if args.quick:
        emit("**--quick**: smaller sweeps and 1 repeat; not comparable with the targets.")
        emit()
    with tempfile.TemporaryDirectory(prefix="bench_harness_") as tmpdir:
        tmp = Path(tmpdir)
        a = bench_a(tmp, small)
        b = bench_b(tmp, a["uri"], repeats)
        c = bench_c(tmp, seeds, repeats)
        e = bench_e(tmp, c, 8 if args.quick else 20)
        f = bench_f(tmp, repeats)
        d = None if args.skip_server else bench_d(tmp, small)
        g = bench_g(tmp, repeats)

    def verdict(ok):
        return "met" if ok else "NOT MET"

    emit("### Targets")
    emit()
    emit(
        f"- (a) recording one run (warm, sqlite) <= {TARGET_RECORD} s: measured "
        f"{a['record']:.3f} s (train {a['train']:.3f} s): {verdict(a['record'] <= TARGET_RECORD)}"
    )
    emit(
        f"- (b) one `shallownet-train` process <= {TARGET_PROCESS:g} s: measured "
        f"{b['wall']:.2f} s (median of {repeats}): {verdict(b['wall'] <= TARGET_PROCESS)}"
    )
    emit(
        f"- (c) sweep wall <= {TARGET_SWEEP_X:g}x pure compute: measured {c['wall']:.2f} s vs "
        f"{c['pure']:.2f} s = {c['ratio']:.2f}x: {verdict(c['ratio'] <= TARGET_SWEEP_X)}"
    )
    emit(
        f"- (c) overhead per job <= {TARGET_JOB_OVH:g} s: measured {c['ovh']:.3f} s: "
        f"{verdict(c['ovh'] <= TARGET_JOB_OVH)}"
    )
    emit(
        f"- (e) {e['n_jobs']} jobs: {e['wall']:.2f} s vs {e['pure']:.2f} s pure compute; one more "
        f"job adds {e['marg_wall']:.3f} s of wall time ({e['marg_pure']:.3f} s of it compute)"
    )
    for name, r in f.items():
        emit(
            f"- (f) {name} sweep wall <= {r['target']:g}x its compute: measured {r['wall']:.2f} s vs "
            f"{r['compute']:.2f} s = {r['ratio']:.2f}x: {verdict(r['ratio'] <= r['target'])}"
        )
    if d is not None:
        emit(
            f"- (d) server vs sqlite (no numeric target): recording {d['srv']:.3f} s vs "
            f"{d['sql']:.3f} s per run, {d['srv'] - d['sql']:+.3f} s; the server run against "
            f"(a)'s {TARGET_RECORD} s budget: {verdict(d['srv'] <= TARGET_RECORD)}"
        )
    else:
        emit("- (d) skipped (--skip-server)")
    emit(
        f"- (g) a new store: {g['template']:.3f} s as a copy of the migrated template (then "
        f"{g['open']:.3f} s to open it) against {g['mlflow']:.3f} s for MLflow to create and open it"
    )
    emit()
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    emit(f"Benchmark wall time: {time.perf_counter() - t_all:.0f} s; load average at the end: {load}.")
    if args.out:
        Path(args.out).write_text("\n".join(OUT) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
