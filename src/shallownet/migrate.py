"""Copy an experiment's runs from one tracking store to another (e.g. the embedded sqlite
store to ``make server``): params, full metric histories, tags, artifacts, parent links.

    python -m shallownet.migrate --from sqlite:///outputs/mlflow.db --to http://127.0.0.1:5000
"""

import argparse
import os
import sys

# a server that is down fails in seconds, not after MLflow's ~250 s of retries
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


class MigrateError(RuntimeError):
    """The runs could not be copied (no such experiment, a store that cannot be used)."""


def migrate(src_uri, dst_uri, experiment="shallownet", *, log=print, **options):
    """Copy every run of ``experiment`` to ``dst_uri`` (``tracking.copy_experiment``); {old_id: new_id}."""
    from .record import tracking

    try:
        return tracking.copy_experiment(src_uri, dst_uri, experiment, log=log, **options)
    except (LookupError, tracking.TrackingError) as err:
        raise MigrateError(str(err)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shallownet.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="src", required=True, help="e.g. sqlite:///outputs/mlflow.db")
    parser.add_argument("--to", dest="dst", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--experiment", default="shallownet")
    parser.add_argument("--to-experiment", default=None, help="destination name (default: the same)")
    parser.add_argument("--include-deleted", dest="deleted", action="store_true")
    args = parser.parse_args(argv)
    for key, value in HTTP_ENV.items():
        os.environ.setdefault(key, value)
    try:
        migrate(
            args.src,
            args.dst,
            args.experiment,
            dst_experiment=args.to_experiment,
            include_deleted=args.deleted,
        )
    except MigrateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
