"""``shallownet-report``: the command line."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..record import store, tracking
from .build import DEFAULT_LOSS_FRACTION, ReportError, build_report
from .scope import Scope, experiment_scope
from .document import summary_text
from .stats import ALPHA


def resolve_tracking_uri(flag: str | None) -> str:
    return flag or store.default_uri()


def _one_line(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments in one line on stderr, exit 2 (argparse prints its usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def fraction(text):
    """A number strictly between 0 and 1 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def finite(text):
    """A finite number (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def out_dir(text):
    """The report's directory: a new one or an existing directory, never an existing file."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file, not a directory: give a directory for the report"
        )
    return text


def parse_args(argv=None):
    p = OneLineParser(
        prog="shallownet-report",
        description="Report of a shallownet sweep (or any runs of an experiment) from MLflow: "
        "per-level statistics, paired comparisons with effects, CIs and "
        "Holm-adjusted p, censored epochs to threshold, factorial effects, "
        "figures and the tutorials' claims.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--sweep",
        metavar="SWEEP_ID|latest",
        help="sweep id (tag sweep_id) or 'latest' (the sweep run most recently: started or resumed)",
    )
    src.add_argument(
        "--experiment", metavar="NAME", help="report on all child runs of this experiment (no parent logging)"
    )
    p.add_argument(
        "--filter",
        default="",
        metavar="FILTER",
        help="mlflow search filter for --experiment, e.g. \"params.dataset.name = 'quadrant'\"",
    )
    p.add_argument(
        "--experiment-name",
        default=tracking.DEFAULT_EXPERIMENT,
        help="experiment holding the sweep (with --sweep; default %(default)s)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $SHALLOWNET_TRACKING_URI, else $MLFLOW_TRACKING_URI, else "
        "the checkout's outputs/mlflow.db, else ~/.local/share/shallownet/mlflow.db)",
    )
    p.add_argument(
        "--out",
        default=None,
        type=out_dir,
        metavar="DIR",
        help="output directory (default outputs/reports/<sweep id>, or for --experiment "
        "outputs/reports/<experiment>--<filter>-<hash of the filter>)",
    )
    thr = p.add_mutually_exclusive_group()
    thr.add_argument(
        "--loss-threshold",
        type=finite,
        default=None,
        metavar="LOSS",
        help="absolute train-loss threshold for epochs-to-threshold",
    )
    thr.add_argument(
        "--loss-fraction",
        type=fraction,
        default=DEFAULT_LOSS_FRACTION,
        metavar="F",
        help="threshold = F x median initial train loss of the runs (default %(default)s)",
    )
    p.add_argument(
        "--alpha",
        type=fraction,
        default=ALPHA,
        help="familywise significance level (Holm) for the verdicts (default %(default)s)",
    )
    p.add_argument(
        "--ignore-param",
        action="append",
        default=[],
        metavar="KEY",
        help="param never treated as a factor (repeatable)",
    )
    p.add_argument(
        "--no-log",
        action="store_true",
        help="do not log the report to the parent run (artifacts, description)",
    )
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # what to report is the one thing a report needs: say how to name it
        p.print_usage(sys.stderr)
        p.error("name what to report: --sweep latest (or a sweep id), or --experiment NAME")
    return p.parse_args(argv)


def load(client, args):
    """(runs frame, Scope) of the sweep or of the experiment's runs matching the filter."""
    if args.sweep is not None:
        sweep_id, runs = tracking.load_sweep_runs(client, args.experiment_name, args.sweep)
        studies = sweep_studies(runs)
        return runs, Scope(args.experiment_name, sweep_id, studies.get(sweep_id))
    runs = tracking.load_experiment_runs(client, args.experiment, args.filter)
    exp = tracking.require_experiment(client, args.experiment)
    parents = tracking.search_runs_frame(client, [exp], f"tags.`{tracking.TAG_ROLE}` = 'parent'")
    return runs, experiment_scope(args.experiment, args.filter, runs, sweep_studies(parents))


def sweep_studies(frame):
    """{sweep_id: experiment file} of the parent runs in a runs frame."""

    def col(name):
        return list(frame[f"tags.{name}"]) if f"tags.{name}" in frame else [None] * len(frame)

    return {
        sweep: study
        for role, sweep, study in zip(
            col(tracking.TAG_ROLE), col(tracking.TAG_SWEEP), col(tracking.TAG_STUDY)
        )
        if role == "parent" and isinstance(sweep, str) and isinstance(study, str)
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        try:
            client = tracking.open_store(uri)
            runs, scope = load(client, args)
        except (tracking.TrackingError, tracking.RunsNotFound) as e:
            raise ReportError(str(e)) from e
        except Exception as e:  # connection errors, broken store, MLflow errors
            raise ReportError(f"cannot read runs from {uri}: {_one_line(e)}") from e
        out = Path(args.out) if args.out else Path("outputs") / "reports" / scope.folder()
        report = build_report(
            runs,
            out,
            client,
            loss_threshold=args.loss_threshold,
            loss_fraction=args.loss_fraction,
            ignore_params=args.ignore_param,
            log_artifacts=args.sweep is not None and not args.no_log,
            alpha=args.alpha,
            scope=scope,
        )
    except ReportError as e:
        print(f"shallownet-report: error: {e}", file=sys.stderr)
        return 2
    print(scope.title)
    print(summary_text(report))
    if report.logged_artifacts:
        print(
            f"logged {len(report.logged_artifacts)} files to run {report.parent_run_id} "
            "under report/ and set its description"
        )
    print(f"report: {report.files['report_md']}")
    page = f"#/experiments/{runs['experiment_id'].iloc[0]}/runs"
    print("\n".join(store.ui_lines(uri, f"{page}/{report.parent_run_id}" if report.parent_run_id else page)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
