#!/usr/bin/env python
"""Peers benchmark: shallownet's tutorial000_activations sweep next to the same study recorded
by W&B (offline) and by Hydra + joblib + MLflow, written as their documentation shows
(benchmarks/peers/), in one run.

The study: 3 activations (tanh, relu, leaky_relu) x 5 seeds = 15 trainings of a 3-4-1 net,
2000 epochs, full batch, lr 0.1, make_classification(500, 3 features, flip_y 0.1, class_sep
1.5, random_state 42), 80/20 split; every run keeps the five per-epoch curves, two figures
and a model; Hydra multirun with the joblib launcher, 2 jobs at once. Variants:

- shallownet: `.venv/bin/shallownet-train -m experiment=tutorial000_activations
  tracking.uri=sqlite:///<tmp>/mlflow.db hydra.sweep.dir=<tmp>/sw`, on a store created
  beforehand (not timed).
- wandb: benchmarks/peers/wandb_sweep.py with WANDB_MODE=offline (no login, no network), in
  the peers' venv (benchmarks/peers/.venv, made by benchmarks/peers/make_venv.sh).
- mlflow: benchmarks/peers/mlflow_sweep.py on a sqlite store created beforehand (not timed),
  in the peers' venv.
- optional (--variants): wandb-every-epoch (run.log at all 2000 epochs), mlflow-infer-reqs
  (log_model infers the pip requirements itself).

Every variant trains with shallownet's src/model (the peers load that package only), so the
final losses must agree exactly; the script checks that they do. Each sweep runs N times
(3, --quick 1), the variants alternating in a rotating order; the table gives the median
wall time (process launch to exit) with min-max, the speed-up of shallownet over each
peer, and the CPU seconds of each sweep and all its descendants (the bench is their child
subreaper, so nothing is left running and wandb-core's time counts too). Everything is
written under a temporary directory, removed at the end (W&B's data, cache, config and
artifact folders included).

    python benchmarks/bench_peers.py                  # 3 repeats, about 4 min on 2 cores
    python benchmarks/bench_peers.py --quick          # 1 repeat, about 1.5 min
    python benchmarks/bench_peers.py --out peers.md   # also write the markdown
    python benchmarks/bench_peers.py --variants shallownet,wandb,wandb-every-epoch

Run it on a quiet machine (load average below ~1): --wait-quiet SECONDS waits that long at
most for the 1-minute load to drop under 1 before starting.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shallownet.record.provenance import cpu_model

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
PROJECT_BIN = ROOT / ".venv" / "bin"
PEERS_PY = PEERS / ".venv" / "bin" / "python"
N_RUNS = 15
TARGETS = {"wandb": 2.0, "mlflow": 3.0}  # shallownet at least this many times faster
TOLERANCE = 1e-12  # final losses: largest relative difference allowed (same arithmetic)

# What each variant records per run: (short, for the table; in full, listed under it)
RECORDS = {
    "shallownet": (
        "params, tags, 5 curves, summaries, parquet, config, env, 2 PNGs, pyfunc model",
        "a parent run and 15 child runs: the full config as params, identity and "
        "environment tags, 5 curves x 200 points plus final values, test AUC and "
        "timings, curves.parquet (all 2000 epochs), config.yaml, environment.txt, "
        "2 PNG plots, a pyfunc model (from code, explicit signature and "
        "requirements); a config already finished is skipped",
    ),
    "wandb": (
        "config, 5 curves, 2 images, model artifact",
        "15 offline runs: the Hydra config, 5 curves + epoch at 200 steps (run.log during "
        "training), 2 wandb.Image, the weights as a model artifact (run.log_model); W&B's "
        "own system metrics, requirements.txt, metadata and console log; Hydra's .hydra/ "
        "and job log per job",
    ),
    "wandb-every-epoch": ("as wandb, 2000 steps", "as wandb, with run.log at all 2000 epochs"),
    "mlflow": (
        "params, 5 curves, 2 PNGs, pyfunc model",
        "15 runs: the flattened config as params, 5 curves x 200 points in one "
        "log_batch, 2 log_figure PNGs, a pyfunc model (cloudpickled PythonModel, "
        "explicit signature and requirements); Hydra's .hydra/ and job log per job",
    ),
    "mlflow-infer-reqs": (
        "as mlflow, requirements inferred",
        "as mlflow, with log_model inferring the pip requirements",
    ),
}
DEFAULT_VARIANTS = ("shallownet", "wandb", "mlflow")

OUT = []


def emit(line=""):
    OUT.append(line)
    print(line, flush=True)


def fail(msg):
    sys.exit(f"bench_peers: {msg}")


def load():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def fmt_load(l=None):
    return " ".join(f"{x:.2f}" for x in (l or load()))


# ----------------------------------------------------------------------------- processes


def clean_env(**extra):
    """The caller's environment without any tracker's or shallownet's settings (OPENBLAS_*
    left as they are), plus ``extra``."""
    drop = ("SHALLOWNET_", "MLFLOW_", "WANDB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "HYDRA_FULL_ERROR"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def become_subreaper():
    """Make this process the child subreaper of everything it starts (Linux prctl): orphaned
    descendants of a sweep (wandb-core, resource trackers) are then reparented to us, so we
    reap them, their CPU time is counted and none is left running. False elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = False


def _stat(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pgid):
    """Live processes that are ours to end: our children (with a subreaper, every orphaned
    descendant of a sweep is one) and the members of process group ``pgid``."""
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if (
            d.name.isdigit()
            and (f := _stat(d.name))
            and f[0] != "Z"
            and (int(f[1]) == me or int(f[2]) == pgid)
        ):
            out.append(int(d.name))
    return out


def reap():
    """Collect our exited children (their CPU time goes into RUSAGE_CHILDREN)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_rest(pgid, grace=5.0):
    """Give what outlives a sweep's main process ``grace`` seconds to exit (joblib's and
    multiprocessing's resource trackers, wandb-core outlive it by a moment), then SIGTERM,
    then SIGKILL each of them; reaps them all. Returns how many had to be ended."""
    deadline = time.time() + grace
    while (left := descendants(pgid)) and time.time() < deadline:
        reap()
        time.sleep(0.05)
    ended = len(left)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while (left := descendants(pgid)) and time.time() < deadline:
            reap()
            time.sleep(0.05)
        if not left:
            break
    reap()
    return ended


def run(args, cwd, timeout, log, env):
    """Run ``args`` in its own session, output to ``log``; (exit code or 'timeout', wall s,
    processes ended after it, CPU s). Wall: launch to the main process's exit. CPU: user +
    system time of the process and all its descendants (with the subreaper; without it, of
    those their parents waited for)."""
    with open(log, "w") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        except BaseException:  # Ctrl-C, SIGTERM: the sweep runs in its own session, end it too
            _kill_group(p.pid)
            p.wait()
            end_rest(p.pid, grace=0)
            raise
        wall = time.perf_counter() - t0
        if rc == "timeout":
            _kill_group(p.pid)
            p.wait()
        left = end_rest(p.pid, grace=0 if rc == "timeout" else 5.0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, (0 if rc == "timeout" else left), cpu


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def tail(log, n=25):
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return "  (no output)"
    return "\n".join("  " + line for line in lines[-n:])


def checked(args, cwd, timeout, log, env, what):
    rc, wall, left, cpu = run(args, cwd, timeout, log, env)
    if rc != 0:
        fail(f"{what} failed (exit {rc} after {wall:.0f} s)\n  {' '.join(map(str, args))}\n{tail(log)}")
    return wall, left, cpu


# ----------------------------------------------------------------------------- results


def mlflow_finals(db, act_key, seed_key, train_key, test_key):
    """{activation/seed: [train, test]} of the FINISHED runs of an MLflow sqlite store, and
    the largest number of points of one curve in one run."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT a.value, s.value, tr.value, te.value FROM runs r "
            "JOIN params a ON a.run_uuid = r.run_uuid AND a.key = ? "
            "JOIN params s ON s.run_uuid = r.run_uuid AND s.key = ? "
            "JOIN latest_metrics tr ON tr.run_uuid = r.run_uuid AND tr.key = ? "
            "JOIN latest_metrics te ON te.run_uuid = r.run_uuid AND te.key = ? "
            "WHERE r.status = 'FINISHED' AND r.lifecycle_stage = 'active'",
            (act_key, seed_key, train_key, test_key),
        ).fetchall()
        points = con.execute(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM metrics "
            "WHERE key = 'train_loss' GROUP BY run_uuid)"
        ).fetchone()[0]
    except sqlite3.Error as err:
        fail(f"reading {db}: {err} (has MLflow's schema changed?)")
    finally:
        con.close()
    return {f"{a}/{int(s)}": [float(tr), float(te)] for a, s, tr, te in rows}, points


def disk(path):
    files, size = 0, 0
    for p in Path(path).rglob("*"):
        if p.is_file() and not p.is_symlink():
            files += 1
            size += p.stat().st_size
    return files, size


# ----------------------------------------------------------------------------- variants


def store_code(kind):
    if kind == "shallownet":
        return (
            "import sys; from shallownet.record import tracking; tracking.configure(sys.argv[1]); "
            "tracking.ensure_experiment(sys.argv[1], 'shallownet')"
        )
    return (
        "import sys, mlflow; mlflow.set_tracking_uri(sys.argv[1]); "
        "mlflow.create_experiment('tutorial000_activations')"
    )


def run_variant(name, tmp, timeout):
    """One sweep of variant ``name`` in a fresh folder under ``tmp``: {wall, finals, points,
    files, bytes, left}."""
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))
    log = work / "sweep.log"
    sweep_dir = work / "sw"
    if name == "shallownet":
        uri = f"sqlite:///{work / 'mlflow.db'}"
        checked(
            [str(PROJECT_BIN / "python"), "-c", store_code("shallownet"), uri],
            work,
            300,
            work / "store.log",
            clean_env(),
            "creating shallownet's store",
        )
        args = [
            str(PROJECT_BIN / "shallownet-train"),
            "-m",
            "experiment=tutorial000_activations",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={sweep_dir}",
        ]
        wall, left, cpu = checked(args, work, timeout, log, clean_env(), "shallownet's sweep")
        if f"{N_RUNS}/{N_RUNS} configs finished" not in Path(log).read_text(errors="replace"):
            fail(f"shallownet's sweep did not finish its {N_RUNS} configs\n{tail(log)}")
        finals, points = mlflow_finals(
            work / "mlflow.db", "activation.name", "seed", "final_train_loss", "final_test_loss"
        )
    elif name.startswith("wandb"):
        dirs = {
            k: work / k.lower()
            for k in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ARTIFACT_DIR", "WANDB_CONFIG_DIR")
        }
        env = clean_env(WANDB_MODE="offline", WANDB_DIR=work, **dirs)
        args = [str(PEERS_PY), str(PEERS / "wandb_sweep.py"), "-m", f"hydra.sweep.dir={sweep_dir}"]
        if name == "wandb-every-epoch":
            args.append("wandb.log_every_epoch=true")
        wall, left, cpu = checked(args, work, timeout, log, env, f"the {name} sweep")
        read = work / "read.log"
        checked(
            [str(PEERS_PY), str(PEERS / "read_wandb.py"), str(work)],
            work,
            300,
            read,
            clean_env(),
            "reading the W&B runs",
        )
        got = json.loads(Path(read).read_text().strip().splitlines()[-1])
        finals, points = got["finals"], got["points"]
    elif name.startswith("mlflow"):
        uri = f"sqlite:///{work / 'mlflow.db'}"
        checked(
            [str(PEERS_PY), "-c", store_code("mlflow"), uri],
            work,
            300,
            work / "store.log",
            clean_env(),
            "creating the MLflow peer's store",
        )
        args = [
            str(PEERS_PY),
            str(PEERS / "mlflow_sweep.py"),
            "-m",
            f"mlflow.tracking_uri={uri}",
            f"hydra.sweep.dir={sweep_dir}",
        ]
        if name == "mlflow-infer-reqs":
            args.append("mlflow.infer_requirements=true")
        wall, left, cpu = checked(args, work, timeout, log, clean_env(), f"the {name} sweep")
        finals, points = mlflow_finals(work / "mlflow.db", "activation", "seed", "train_loss", "test_loss")
    else:
        fail(f"unknown variant {name!r}; known: {', '.join(RECORDS)}")
    if len(finals) != N_RUNS:
        fail(f"{name}: {len(finals)} finished runs found, expected {N_RUNS}\n{tail(log)}")
    files, size = disk(work)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "finals": finals,
        "points": points,
        "files": files,
        "bytes": size,
        "left": left,
    }


def pure_compute(tmp, timeout):
    """The study's 15 trainings in one process (peers' venv, one BLAS thread), no tracker."""
    log = Path(tmp) / "pure.log"
    checked(
        [str(PEERS_PY), str(PEERS / "study.py"), "--pure"], tmp, timeout, log, clean_env(), "pure compute"
    )
    return json.loads(Path(log).read_text().strip().splitlines()[-1])


# ----------------------------------------------------------------------------- environment

PROBE = r"""
import json, sys
from importlib import metadata
import numpy, threadpoolctl
vers = {}
for p in sys.argv[1:]:
    try:
        vers[p] = metadata.version(p)
    except metadata.PackageNotFoundError:
        pass
blas = [f"{l['internal_api']} {l['version']} ({l.get('architecture')})"
        for l in threadpoolctl.threadpool_info() if l.get("user_api") == "blas"]
print(json.dumps({"python": sys.version.split()[0], "versions": vers, "blas": blas}))
"""


def probe(python, packages):
    p = subprocess.run(
        [str(python), "-c", PROBE, *packages], capture_output=True, text=True, timeout=120, env=clean_env()
    )
    if p.returncode != 0:
        fail(f"probing {python} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def environment():
    proj = probe(PROJECT_BIN / "python", ["numpy", "mlflow", "hydra-core", "scikit-learn", "psutil"])
    peers = probe(
        PEERS_PY,
        [
            "wandb",
            "mlflow",
            "hydra-core",
            "hydra-joblib-launcher",
            "joblib",
            "numpy",
            "scikit-learn",
            "matplotlib",
            "psutil",
        ],
    )

    def vs(d):
        return ", ".join(f"{k} {v}" for k, v in d["versions"].items())

    emit(
        f"Environment: CPU {cpu_model()} ({os.cpu_count()} logical cores) | python {proj['python']} | "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE') or 'unset'}"
    )
    emit()
    emit(
        f"- project venv (.venv): {vs(proj)}; psutil {'present' if 'psutil' in proj['versions'] else 'absent'}; "
        f"BLAS: {'; '.join(proj['blas'])}"
    )
    emit(
        f"- peers' venv (benchmarks/peers/.venv): {vs(peers)}; psutil "
        f"{'present' if 'psutil' in peers['versions'] else 'absent'}; BLAS: {'; '.join(peers['blas'])}"
    )
    emit()


# ----------------------------------------------------------------------------- main


def check_finals(results, ref_name):
    """Largest relative difference of each variant's final (train, test) loss from
    ``ref_name``'s, per run; exits when a variant differs by more than TOLERANCE."""
    ref = results[ref_name][0]["finals"]
    worst = {}
    for name, reps in results.items():
        dtrain = dtest = 0.0
        for rep in reps:
            if set(rep["finals"]) != set(ref):
                fail(f"{name}: runs {sorted(rep['finals'])} differ from {ref_name}'s {sorted(ref)}")
            for key, (tr, te) in rep["finals"].items():
                dtrain = max(dtrain, abs(tr - ref[key][0]) / abs(ref[key][0]))
                dtest = max(dtest, abs(te - ref[key][1]) / abs(ref[key][1]))
        worst[name] = (dtrain, dtest)
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat")
    ap.add_argument("--repeats", type=int, help="sweeps per variant (default 3, --quick 1)")
    ap.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, from: {', '.join(RECORDS)} (shallownet is always run)",
    )
    ap.add_argument("--timeout", type=float, default=900, help="seconds per sweep (default 900)")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait at most this long for the 1-minute load average to drop below 1",
    )
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args(argv)

    def interrupted(signum, frame):  # SIGTERM (and SIGINT, even when inherited as ignored,
        raise KeyboardInterrupt  # e.g. under nohup): end the running sweep, clean up, exit

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    global SUBREAPER
    SUBREAPER = become_subreaper()
    repeats = args.repeats or (1 if args.quick else 3)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in RECORDS]
    if unknown:
        fail(f"unknown variant(s) {unknown}; known: {', '.join(RECORDS)}")
    if "shallownet" not in variants:
        variants.insert(0, "shallownet")
    if not (PROJECT_BIN / "shallownet-train").exists():
        fail(f"{PROJECT_BIN / 'shallownet-train'} not found: make venv")
    if not PEERS_PY.exists():
        fail(f"{PEERS_PY} not found: bash benchmarks/peers/make_venv.sh")

    waited = 0.0
    while args.wait_quiet and load()[0] >= 1.0 and waited < args.wait_quiet:
        time.sleep(10)
        waited += 10
    t_all = time.perf_counter()
    start_load = load()
    cmd = "python benchmarks/bench_peers.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    emit(
        f"Command: `{cmd}` ({datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}); load "
        f"average at the start: {fmt_load(start_load)}"
        + (f" (after waiting {waited:.0f} s)" if waited else "")
    )
    emit()
    if start_load[0] >= 1.0:
        emit(
            f"**Warning**: 1-minute load average {start_load[0]:.2f} >= 1 at the start: other "
            f"processes share the 2 cores; timings are only indicative."
        )
        emit()
    environment()

    results = {v: [] for v in variants}
    pures = []
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmpdir:
        tmp = Path(tmpdir)
        for r in range(repeats):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for name in order:
                res = run_variant(name, tmp, args.timeout)
                results[name].append(res)
                print(
                    f"  repeat {r + 1}/{repeats}: {name:18s} {res['wall']:6.2f} s wall, "
                    f"{res['cpu']:6.2f} s CPU  (load "
                    f"{fmt_load()})",
                    flush=True,
                )
                if res["left"]:
                    print(
                        f"  note: {res['left']} process(es) of {name} outlived its sweep by 5 s: ended",
                        flush=True,
                    )
            pures.append(pure_compute(tmp, args.timeout))
            loads.append(load())

    worst = check_finals(results, "shallownet")
    pure = statistics.median(p["seconds"] for p in pures)
    pure_list = ", ".join(f"{p['seconds']:.2f}" for p in pures)
    ref_pure = pures[0]["finals"]
    sn = results["shallownet"][0]["finals"]
    d_pure = max(abs(ref_pure[k][0] - sn[k][0]) / abs(sn[k][0]) for k in sn)

    def walls(name):
        return [x["wall"] for x in results[name]]

    def cpus(name):
        return [x["cpu"] for x in results[name]]

    sn_med = statistics.median(walls("shallownet"))
    sn_cpu = statistics.median(cpus("shallownet"))
    emit(f"### tutorial000_activations sweep, {N_RUNS} runs, 2 jobs at once: shallownet vs its peers")
    emit()
    emit(
        f"Sweep wall time = process launch to exit (stores created beforehand, not counted); "
        f"median of {repeats} (min-max), the variants alternating. Speed-up = peer's median "
        f'wall / shallownet\'s median wall; "paired" gives the range of that ratio over the '
        f"repeats, each peer sweep divided by the shallownet sweep of the same repeat. CPU = user + "
        f"system seconds of the sweep process and all its descendants"
        + ("" if SUBREAPER else " that their parents waited for (no subreaper: incomplete)")
        + " (less sensitive to other load than wall time; the targets are about wall time)."
    )
    emit()
    rows = []
    for name in variants:
        ws = walls(name)
        med = statistics.median(ws)
        cpu = statistics.median(cpus(name))
        if name == "shallownet":
            ratio, paired, cpu_ratio = "1.00x", "", "1.00x"
        else:
            cpu_ratio = f"{cpu / sn_cpu:.2f}x"
            ratio = f"**{med / sn_med:.2f}x**"
            pr = [w / s for w, s in zip(ws, walls("shallownet"))]
            paired = f"{min(pr):.2f}-{max(pr):.2f}x" if len(pr) > 1 else ""
        last = results[name][-1]
        rows.append(
            [
                name,
                f"{med:.2f} s ({min(ws):.2f}-{max(ws):.2f})",
                ratio,
                paired,
                f"{cpu:.1f} s",
                cpu_ratio,
                f"{(med - pure) / N_RUNS:.3f} s",
                str(last["points"]),
                f"{last['files']} files, {last['bytes'] / 1e6:.1f} MB",
                RECORDS[name][0],
            ]
        )
    emit(
        "| variant | sweep wall, median (min-max) | speed-up of shallownet | paired | "
        "CPU, median | CPU ratio | (wall - pure compute) / run | points per curve | "
        "on disk after the sweep | records |"
    )
    emit("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        emit("| " + " | ".join(row) + " |")
    emit()
    emit("What each variant records:")
    emit()
    for name in variants:
        emit(f"- {name}: {RECORDS[name][1]}")
    emit()
    emit(
        f"Pure compute: the {N_RUNS} trainings with their per-epoch evaluation, one after the "
        f"other in one process, one BLAS thread, no tracker: {pure:.2f} s (median of "
        f"{len(pures)}; {pure_list})."
    )
    emit()
    emit(
        "Final losses (train, test) of the 15 runs, largest relative difference from "
        "shallownet's records: "
        + "; ".join(
            f"{name} {dtr:.1e}, {dte:.1e}" for name, (dtr, dte) in worst.items() if name != "shallownet"
        )
        + f"; pure compute {d_pure:.1e}. "
        + (
            "They agree."
            if all(max(w) <= TOLERANCE for w in worst.values()) and d_pure <= TOLERANCE
            else f"**They differ by more than {TOLERANCE:g}.**"
        )
    )
    emit()
    emit("Targets (shallownet's sweep at least this many times faster):")
    emit()
    if not any(name in results for name in TARGETS):
        emit(f"- none for these variants (targets: {', '.join(TARGETS)})")
    for name, target in TARGETS.items():
        if name in results:
            x = statistics.median(walls(name)) / sn_med
            emit(f"- {name}: >= {target:g}x, measured {x:.2f}x: {'met' if x >= target else 'NOT MET'}")
    emit()
    emit(
        f"Load average after each repeat: {'; '.join(fmt_load(l) for l in loads)}. "
        f"Benchmark wall time: {time.perf_counter() - t_all:.0f} s."
    )
    if args.out:
        Path(args.out).write_text("\n".join(OUT) + "\n")
    worst_all = max(max(w) for w in worst.values())
    return 0 if worst_all <= TOLERANCE and d_pure <= TOLERANCE else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench_peers: interrupted")
