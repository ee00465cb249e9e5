"""``make demo``: two tutorial studies on the embedded store, their reports, one reproduction.

1. tutorial 000's activation ablation (tanh / ReLU / leaky ReLU x 5 seeds, 2 at once)
2. tutorial 001's blobs: plateau decay vs a constant rate (x 5 seeds, overlapping blobs)
3. a report for each sweep, named by the id the sweep printed (outputs/reports/<sweep>/report.html)
4. one run re-executed from the store and compared bit for bit ("identical")
"""

import re
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STUDIES = ("tutorial000_activations", "tutorial001_blobs")


def step(title):
    print(f"\n=== {title} ===", flush=True)


def run(*args):
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], text=True, capture_output=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(out)
        sys.exit(f"demo: {' '.join(args)} failed with exit code {proc.returncode}")
    return out


def sweep_of(out):
    """The id of the sweep that shallownet-train's output announced."""
    found = re.search(r"^shallownet: sweep (\S+) \(", out, re.MULTILINE)
    if found is None:
        print(out)
        sys.exit("demo: the sweep did not say its id")
    return found.group(1)


def main():
    t0 = time.time()
    reports = []
    for study in STUDIES:
        step(f"sweep: shallownet-train -m experiment={study}")
        out = run("shallownet-train", "-m", f"experiment={study}")
        print(
            "\n".join(
                line
                for line in out.splitlines()
                if line.startswith(("[", "sweep", "best", "finished", "failed", "  ", "shallownet:"))
                and "INFO" not in line
            )
        )
        sweep_id = sweep_of(out)
        step(f"report: shallownet-report --sweep {sweep_id}   ({study})")
        out = run("shallownet-report", "--sweep", sweep_id)
        print(out.strip())
        reports.append(
            next(line.split("report: ", 1)[1] for line in out.splitlines() if line.startswith("report: "))
        )

    step("reproduce one run of the first sweep: shallownet-reproduce RUN_ID")
    from .record import store, tracking

    uri = store.default_uri()
    client = tracking.connect(uri)
    child = tracking.latest_run(
        client,
        tracking.DEFAULT_EXPERIMENT,
        f"tags.`{tracking.TAG_ROLE}` = 'child' and attributes.status = 'FINISHED'"
        " and params.`dataset.name` = 'classification'",
    )
    out = run("shallownet-reproduce", child.info.run_id)
    print(out.strip())

    step(f"done in {time.time() - t0:.0f}s")
    for path in reports:
        print(f"report: {Path(path).with_suffix('.html')}")
    print("\n".join(store.ui_lines(uri, f"#/experiments/{child.info.experiment_id}/runs")))
    print("(experiment 'shallownet'; expand a sweep's parent run to compare its children)")


if __name__ == "__main__":
    main()
