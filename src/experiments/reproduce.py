"""``shallownet-reproduce RUN_ID``: re-run a recorded run and compare it bit for bit.

The run is re-executed from what the store holds: its logged ``config.yaml`` (the resolved
config) and, when it was recorded from a clean tree at a commit this repository still has,
the code of that commit (``git archive``); otherwise the current tree, with a warning. The
new run is tagged ``reproduces=<RUN_ID>``. Every logged metric history and the
full-resolution ``curves.parquet`` are then compared exactly (wall-clock metrics excepted).

    shallownet-reproduce 3f2a...            # prints "identical" or the first difference
    shallownet-reproduce --sweep latest     # every child of a sweep, as a table

Exit code 0 when everything reproduced identically, 1 otherwise, 2 on usage errors.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WALL_CLOCK = {"train_seconds", "seconds_per_epoch", "sweep_seconds"}
DEFAULT_URI = "sqlite:///outputs/mlflow.db"


def _code_dir(run, tmp):
    """(src dir to import from, warning or None) for the run's recorded code."""
    commit = run.data.tags.get("git_commit", "unknown")
    dirty = run.data.tags.get("git_dirty", "unknown")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True).stdout.strip()
    if commit == head:
        warn = None if dirty == "false" else "the run was recorded from a dirty tree: using the current tree"
        return None, warn
    if dirty != "false":
        return None, f"the run was recorded from a dirty tree at {commit[:10]}: using the current tree"
    ok = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=PROJECT_ROOT,
                        capture_output=True).returncode == 0
    if not ok:
        return None, f"commit {commit[:10]} is not in this repository: using the current tree"
    code = Path(tmp) / "code"
    code.mkdir()
    archive = subprocess.run(["git", "archive", commit, "src"], cwd=PROJECT_ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    return code / "src", None


def rerun(client, run_id, uri):
    """Re-execute ``run_id``; returns (new_run_id, warnings)."""
    run = client.get_run(run_id)
    warnings = []
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        conf.mkdir()
        path = client.download_artifacts(run_id, "config.yaml", tmp)
        Path(path).replace(conf / "config.yaml")
        src, warn = _code_dir(run, tmp)
        if warn:
            warnings.append(warn)
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
        cmd = [sys.executable, "-m", "experiments.train", "--config-path", str(conf),
               "--config-name", "config", f"tracking.uri={uri}",
               f"hydra.run.dir={Path('outputs') / 'reproduce' / run_id}", "hydra.output_subdir=null"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    found = re.findall(r"\(([0-9a-f]{32})\)", proc.stdout + proc.stderr)
    if not found:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise RuntimeError(f"re-running {run_id} failed (exit {proc.returncode}): {' | '.join(tail)}")
    new_id = found[-1]
    client.set_tag(new_id, "reproduces", run_id)
    return new_id, warnings


def _curves(client, run_id, tmp):
    import pandas as pd

    try:
        return pd.read_parquet(client.download_artifacts(run_id, "curves.parquet", tmp))
    except Exception:
        return None


def compare(client, old_id, new_id):
    """(identical, message): every metric history and the curves artifact, exactly."""
    old, new = client.get_run(old_id), client.get_run(new_id)
    keys = sorted(set(old.data.metrics) | set(new.data.metrics))
    for key in keys:
        if key in WALL_CLOCK:
            continue
        a = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(old_id, key))
        b = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(new_id, key))
        sa, sb = [m[0] for m in a], [m[0] for m in b]
        if sa != sb:
            first = next((i for i, (p, q) in enumerate(zip(sa, sb)) if p != q), min(len(sa), len(sb)))
            where = (sa + sb)[first] if first < max(len(sa), len(sb)) else "end"
            return False, f"metric {key}: logged steps differ ({len(sa)} vs {len(sb)} points; first at step {where})"
        steps = sa
        x, y = np.array([m[2] for m in a]), np.array([m[2] for m in b])
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            i = int(np.argmin(same))
            return False, (f"metric {key} differs first at step {steps[i]}: {x[i]!r} vs {y[i]!r} "
                           f"(max abs diff {np.nanmax(np.abs(x - y)):.3g})")
    with tempfile.TemporaryDirectory() as tmp:
        ca, cb = _curves(client, old_id, tmp + "/a"), _curves(client, new_id, tmp + "/b")
    if (ca is None) != (cb is None):
        return False, "curves.parquet exists for only one of the runs"
    if ca is not None:
        if list(ca.columns) != list(cb.columns) or len(ca) != len(cb):
            return False, f"curves.parquet shapes differ: {ca.shape} vs {cb.shape}"
        for col in ca.columns:
            x, y = ca[col].to_numpy(float), cb[col].to_numpy(float)
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            if not same.all():
                i = int(np.argmin(same))
                return False, (f"curves.parquet column {col} differs first at epoch {i}: "
                               f"{x[i]!r} vs {y[i]!r} (max abs diff {np.nanmax(np.abs(x - y)):.3g})")
    return True, "identical"


def likely_causes(client, old_id, new_id):
    old, new = client.get_run(old_id).data.tags, client.get_run(new_id).data.tags
    causes = [f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
              if k.startswith("version.") or k in ("python_version", "cpu", "git_commit")
              if old.get(k) != new.get(k)]
    if old.get("git_dirty") != "false":
        causes.append("the original run was recorded from a dirty tree")
    return causes


def reproduce_one(client, run_id, uri):
    new_id, warnings = rerun(client, run_id, uri)
    same, msg = compare(client, run_id, new_id)
    return new_id, same, msg, warnings


def _sweep_children(client, sweep, experiment):
    """(sweep id, child run ids in start order), found as shallownet-report finds them."""
    from .report import load_sweep_runs

    sweep, runs = load_sweep_runs(client, experiment, sweep)
    runs = runs[runs["tags.shallownet.role"] == "child"].sort_values("start_time", kind="mergesort")
    if runs.empty:
        raise LookupError(f"sweep {sweep!r} has no child runs")
    return sweep, list(runs["run_id"])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="shallownet-reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_id", nargs="?", help="the MLflow run id to reproduce")
    ap.add_argument("--sweep", help="reproduce every child run of a sweep (id or 'latest')")
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI))
    ap.add_argument("--experiment", default="shallownet", help="experiment of --sweep")
    args = ap.parse_args(argv)
    if bool(args.run_id) == bool(args.sweep):
        ap.error("give a RUN_ID or --sweep SWEEP_ID")
    try:
        from . import tracking

        client = tracking.connect(args.tracking_uri)
        if args.run_id:
            new_id, same, msg, warnings = reproduce_one(client, args.run_id, args.tracking_uri)
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
            print(f"{args.run_id} -> {new_id}: {msg}")
            if not same:
                for cause in likely_causes(client, args.run_id, new_id):
                    print(f"  likely cause: {cause}")
            return 0 if same else 1
        sweep, runs = _sweep_children(client, args.sweep, args.experiment)
        print(f"reproducing {len(runs)} runs of sweep {sweep}")
        print(f"{'run':<34}{'new run':<34}result")
        all_same = True
        for rid in runs:
            try:
                new_id, same, msg, warnings = reproduce_one(client, rid, args.tracking_uri)
            except RuntimeError as err:
                new_id, same, msg, warnings = "-", False, str(err), []
            all_same &= same
            print(f"{rid:<34}{new_id:<34}{msg}" + "".join(f" [warning: {w}]" for w in warnings))
            if not same and new_id != "-":
                for cause in likely_causes(client, rid, new_id):
                    print(f"{'':<34}likely cause: {cause}")
        print("all identical" if all_same else "NOT all identical")
        return 0 if all_same else 1
    except Exception as err:  # unknown run id, unreachable store: one clear line
        print(f"shallownet-reproduce: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
