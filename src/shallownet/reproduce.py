"""``shallownet-reproduce``: re-run a recorded run and compare it bit for bit.

    shallownet-reproduce RUN_ID                 prints "identical" or the first difference
    shallownet-reproduce --sweep latest         every child of a sweep, as a table

How: the run's stored ``config.yaml`` is read as plain data (safe YAML: no tags, no
interpolations, no ``_target_``, no ``hydra`` node: a run on a shared server is untrusted
input) and passed as overrides of this project's own config tree to ``shallownet-train``,
whose schema refuses any key it does not know. When the run was recorded from a clean tree
at a commit this repository has, that commit's code and config tree are used (``git
archive``); otherwise the current tree, with a warning. The new run is nested under the
original (tag ``reproduces``). Package versions that differ from the run's stored
environment are named first; then every logged metric history and the full-resolution
``curves.parquet`` are compared exactly (wall-clock metrics excepted).

Exit codes: 0 everything identical, 1 something differs or did not re-run, 2 usage error
or unusable store/run.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import checkout
from .console import first_line
from .record import contents, provenance, store, tracking

WALL_CLOCK = {"train_seconds", "seconds_per_epoch", "sweep_seconds"}
GROUPS = ("dataset", "activation", "initializer", "lr_schedule")  # chosen by their name key


class ReproduceError(RuntimeError):
    """A run that cannot be re-run (one line for the user)."""


# ------------------------------------------------------------------ the stored config as data


def stored_config(client, run_id, tmp):
    """The run's resolved config as plain data, refused if it holds anything but values."""
    import yaml

    try:
        path = client.download_artifacts(run_id, "config.yaml", tmp)
    except Exception as err:
        raise ReproduceError(f"run {run_id} has no config.yaml ({first_line(err)})") from None
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ReproduceError(f"run {run_id}: config.yaml is not a mapping")
    _refuse_code(data, "")
    return data


def _refuse_code(node, where):
    """No key of a stored config may make Hydra or OmegaConf run something."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}{key}"
            if key == "hydra" or str(key).startswith("_") and str(key).endswith("_"):
                raise ReproduceError(
                    f"stored config refused: key '{path}' is not a value of a "
                    "shallownet run (Hydra would act on it)"
                )
            _refuse_code(value, path + ".")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_code(value, f"{where}[{i}].")
    elif isinstance(node, str) and "${" in node:
        raise ReproduceError(
            f"stored config refused: '{where.rstrip('.')}' holds an "
            f"interpolation ({node!r}), which Hydra would resolve"
        )


def _value(v):
    """A Python value as a Hydra override value (strings quoted: never interpolated)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ",".join(_value(x) for x in v) + "]"
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def as_overrides(data):
    """Group choices first (dataset=NAME, ...), then every leaf as key=value."""
    out = [f"{g}={data[g]['name']}" for g in GROUPS if isinstance(data.get(g), dict) and "name" in data[g]]
    out += [f"{k}={_value(v)}" for k, v in sorted(_leaves(data).items())]
    return out


def _leaves(node, prefix=""):
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------ re-running


def _code_dir(run, tmp):
    """(tree to run, warning or None) for the run's recorded code: a `git archive` of its
    commit when it was clean, else None (this tree, or the installed package outside a
    checkout)."""
    commit = run.data.tags.get("git_commit", "unknown")
    dirty = run.data.tags.get("git_dirty", "unknown")
    top = checkout.root()
    if top is None or commit == "unknown":
        return None, _installed_warning(run, commit, top)
    head = _git(top, "rev-parse", "HEAD").stdout.decode().strip()
    if commit == head:
        return None, (
            None if dirty == "false" else "the run was recorded from a dirty tree: using the current tree"
        )
    if dirty != "false":
        return None, f"the run was recorded from a dirty tree at {commit[:10]}: using the current tree"
    if _git(top, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None, f"commit {commit[:10]} is not in this repository: using the current tree"
    code = Path(tmp) / "code"
    code.mkdir()
    # before the package was named shallownet (2026-12-02), conf/ stood beside src/
    paths = [p for p in ("src", "conf") if _git(top, "cat-file", "-e", f"{commit}:{p}").returncode == 0]
    archive = _git(top, "archive", commit, *paths, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    return code, None


def _git(top, *args, check=False):
    return subprocess.run(["git", *args], cwd=top, capture_output=True, check=check)


def _installed_warning(run, commit, top):
    """Re-running with the code installed here: say so unless it is the run's own version,
    recorded outside a checkout too."""
    then = run.data.tags.get("version.shallownet")
    now = provenance.environment_tags().get("version.shallownet")
    if commit == "unknown" and then == now:
        return None
    where = "outside a git checkout" if commit == "unknown" else f"at commit {commit[:10]}"
    here = "this shallownet is not a git checkout" if top is None else "no commit to check out"
    return (
        f"the run was recorded {where} (shallownet {then or 'unknown'}); {here}: "
        f"using the installed code (shallownet {now})"
    )


def _train_module(code):
    """The training entry point (``python -m``) of the code a run is re-executed with: the
    installed code's, or that of the commit it was recorded at (older layouts included)."""
    if code is None or (code / "src" / "shallownet" / "__main__.py").exists():
        return "shallownet"
    if (code / "src" / "experiments" / "train.py").exists():
        return "experiments.train"
    return "shallownet.train"


def rerun(client, run_id, uri):
    """Re-execute ``run_id``; returns (new_run_id, warnings)."""
    run = client.get_run(run_id)
    warnings = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = as_overrides(stored_config(client, run_id, tmp))
        code, warn = _code_dir(run, tmp)
        if warn:
            warnings.append(warn)
        env = dict(os.environ, SHALLOWNET_REPRODUCES=run_id)
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(code / "src"), env.get("PYTHONPATH", "")])
        cmd = [sys.executable, "-m", _train_module(code), *overrides, f"tracking.uri={_value(uri)}"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    found = re.findall(r"\(([0-9a-f]{32})\)", proc.stdout + proc.stderr)
    if not found:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-2:]
        raise ReproduceError(f"re-running {run_id} failed (exit {proc.returncode}): {' | '.join(tail)}")
    new_id = found[-1]
    # (again, for code of a commit that predates SHALLOWNET_REPRODUCES)
    tracking.set_tags(client, new_id, contents.reproduction_tags(run_id))
    return new_id, warnings


# ------------------------------------------------------------------ comparing


def _curves(client, run_id, tmp):
    import pandas as pd

    try:
        return pd.read_parquet(client.download_artifacts(run_id, "curves.parquet", tmp))
    except Exception:
        return None


def _num(x):
    return repr(float(x))


def _first_difference(x, y):
    """(index, message) of the first element where two float arrays differ, or None."""
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if same.all():
        return None
    i = int(np.argmin(same))
    return i, f"{_num(x[i])} vs {_num(y[i])} (max abs diff {np.nanmax(np.abs(x - y)):.3g})"


def compare(client, old_id, new_id):
    """(identical, message): every metric history and the curves artifact, exactly."""
    old, new = client.get_run(old_id), client.get_run(new_id)
    for key in sorted(set(old.data.metrics) | set(new.data.metrics)):
        if key in WALL_CLOCK:
            continue
        a = sorted((m.step, m.value) for m in client.get_metric_history(old_id, key))
        b = sorted((m.step, m.value) for m in client.get_metric_history(new_id, key))
        sa, sb = [m[0] for m in a], [m[0] for m in b]
        if sa != sb:
            first = next((i for i, (p, q) in enumerate(zip(sa, sb)) if p != q), min(len(sa), len(sb)))
            where = (sa + sb)[first] if first < max(len(sa), len(sb)) else "end"
            return (
                False,
                f"metric {key}: logged steps differ ({len(sa)} vs {len(sb)} points; first at step {where})",
            )
        diff = _first_difference(np.array([m[1] for m in a]), np.array([m[1] for m in b]))
        if diff:
            return False, f"metric {key} differs first at step {sa[diff[0]]}: {diff[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        ca, cb = _curves(client, old_id, tmp + "/a"), _curves(client, new_id, tmp + "/b")
    if (ca is None) != (cb is None):
        return False, "curves.parquet exists for only one of the runs"
    if ca is not None:
        if list(ca.columns) != list(cb.columns) or len(ca) != len(cb):
            return False, f"curves.parquet shapes differ: {ca.shape} vs {cb.shape}"
        for col in ca.columns:
            diff = _first_difference(ca[col].to_numpy(float), cb[col].to_numpy(float))
            if diff:
                return False, f"curves.parquet column {col} differs first at epoch {diff[0]}: {diff[1]}"
    return True, "identical"


def environment_differences(client, run_id):
    """['numpy 2.4.6 -> 2.4.7', ...]: packages whose version differs from the run's stored
    environment.txt (missing on one side shown as 'absent')."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            stored = Path(client.download_artifacts(run_id, "environment.txt", tmp)).read_text()
        except Exception:
            return []
    then, now = _freeze(stored), _freeze(provenance.pip_freeze())
    skip = {"shallownet"}  # this project itself: its code is compared by commit
    return [
        f"{name} {then.get(name, 'absent')} -> {now.get(name, 'absent')}"
        for name in sorted(set(then) | set(now))
        if name not in skip and then.get(name) != now.get(name)
    ]


def _freeze(text):
    return dict(line.split("==", 1) for line in text.splitlines() if "==" in line)


def likely_causes(client, old_id, new_id):
    old, new = client.get_run(old_id).data.tags, client.get_run(new_id).data.tags
    causes = [
        f"{k}: {old.get(k)} -> {new.get(k)}"
        for k in sorted(set(old) | set(new))
        if k.startswith("version.") or k in ("python_version", "cpu", "git_commit")
        if old.get(k) != new.get(k)
    ]
    if old.get(tracking.TAG_DATA) != new.get(tracking.TAG_DATA):
        causes.append(
            f"the data changed: fingerprint {str(old.get(tracking.TAG_DATA))[:12]} -> "
            f"{str(new.get(tracking.TAG_DATA))[:12]}"
        )
    if old.get("git_dirty") != "false":
        causes.append("the original run was recorded from a dirty tree")
    return causes


def reproduce_one(client, run_id, uri):
    """(new run id, identical?, message, warnings) for one run."""
    status = client.get_run(run_id).info.status
    if status in ("KILLED", "RUNNING"):
        raise ReproduceError(
            f"run {run_id} is {status}: an interrupted run stopped at an "
            "arbitrary epoch, there is nothing to compare with"
        )
    new_id, warnings = rerun(client, run_id, uri)
    same, msg = compare(client, run_id, new_id)
    return new_id, same, msg, warnings


# ------------------------------------------------------------------ command line


def require_run(client, run_id, uri):
    """The run ``run_id`` of the store; ReproduceError "no run ID in URI" when it has none
    (MLflow's own words: "Run with id=... not found")."""
    run = tracking.find_run(client, run_id)
    if run is None:
        raise ReproduceError(f"no run {run_id} in {uri}")
    return run


def _sweep_children(client, sweep, experiment):
    """(sweep id, child run ids in start order), found as shallownet-report finds them."""
    sweep, runs = tracking.load_sweep_runs(client, experiment, sweep)
    runs = runs[runs["tags." + tracking.TAG_ROLE] == "child"].sort_values("start_time", kind="mergesort")
    if runs.empty:
        raise LookupError(f"sweep {sweep!r} has no child runs")
    return sweep, list(runs["run_id"])


def _print_result(rid, new_id, same, msg, warnings, client, table):
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{rid:<34}{new_id:<34}{msg}" if table else f"{rid} -> {new_id}: {msg}")
    if not same and new_id != "-":
        for cause in likely_causes(client, rid, new_id):
            print(f"{'':<34}likely cause: {cause}" if table else f"  likely cause: {cause}")


def _announce_versions(client, run_id):
    differ = environment_differences(client, run_id)
    if differ:
        print(f"packages that differ from the run's environment: {', '.join(differ)}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="shallownet-reproduce",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Re-run a recorded run (or every child of a sweep) from the store and compare "
        "it bit for bit:\nevery metric history and curves.parquet, exactly.",
        epilog="examples:\n  shallownet-reproduce 3f2a9c...        prints 'identical' or the first "
        "difference\n  shallownet-reproduce --sweep latest   every child of the latest sweep\n\n"
        "The stored config is data: a hydra node, _target_ keys or ${...} interpolations are\n"
        "refused. Packages that differ from the run's environment are named first.\n\n"
        "exit codes: 0 identical, 1 a difference (or a run that did not re-run),\n"
        "2 usage error or unusable store or run",
    )
    ap.add_argument("run_id", nargs="?", help="the MLflow run id to reproduce")
    ap.add_argument("--sweep", help="reproduce every child run of a sweep (its id, or 'latest')")
    ap.add_argument(
        "--tracking-uri",
        default=None,
        help="the store (default: $SHALLOWNET_TRACKING_URI, else $MLFLOW_TRACKING_URI, else the "
        "checkout's outputs/mlflow.db, else ~/.local/share/shallownet/mlflow.db)",
    )
    ap.add_argument("--experiment", default=tracking.DEFAULT_EXPERIMENT, help="experiment of --sweep")
    args = ap.parse_args(argv)
    if bool(args.run_id) == bool(args.sweep):
        ap.error("give a RUN_ID or --sweep SWEEP_ID")
    args.tracking_uri = args.tracking_uri or store.default_uri()
    print(store.ui_lines(args.tracking_uri)[0])
    try:
        client = tracking.open_store(args.tracking_uri, timeout=10, retries=2)  # never creates one
        if args.run_id:
            require_run(client, args.run_id, args.tracking_uri)
            _announce_versions(client, args.run_id)
            new_id, same, msg, warnings = reproduce_one(client, args.run_id, args.tracking_uri)
            _print_result(args.run_id, new_id, same, msg, warnings, client, table=False)
            return 0 if same else 1
        sweep, runs = _sweep_children(client, args.sweep, args.experiment)
        print(f"reproducing {len(runs)} runs of sweep {sweep}")
        if runs:
            _announce_versions(client, runs[0])
        print(f"{'run':<34}{'new run':<34}result")
        all_same = True
        for rid in runs:
            try:
                new_id, same, msg, warnings = reproduce_one(client, rid, args.tracking_uri)
            except (ReproduceError, tracking.TrackingError) as err:
                new_id, same, msg, warnings = "-", False, f"not reproduced: {err}", []
            all_same &= same
            _print_result(rid, new_id, same, msg, warnings, client, table=True)
        print("all identical" if all_same else "NOT all identical")
        return 0 if all_same else 1
    except Exception as err:  # unknown run id, unreachable store, refused config: one line
        print(f"shallownet-reproduce: {first_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
