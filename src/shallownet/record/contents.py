"""What a finished (or stopped) training leaves in its run: the summary metrics, the end tags
and the files (curves.parquet with every epoch, config.yaml, environment.txt, the two plots).
Builds them locally; ``shallownet.record.tracking`` sends them."""

from pathlib import Path

import numpy as np

from ..names import METRIC_KEYS, TAG_DIVERGED, TAG_FAILURE


def store_status(fitted, interrupted):
    """The run's terminal status in MLflow: FINISHED only for a whole, uninterrupted run."""
    if interrupted or fitted.status == "KILLED":
        return "KILLED"
    return "FINISHED" if fitted.status == "FINISHED" else "FAILED"


def summary(fitted, split, status):
    """Summary metrics (step 0): final values, epochs done, timings, and the test AUC of a
    FINISHED run."""
    cur, n = fitted.curves.done(), fitted.curves.n
    out = {
        "epochs_completed": n,
        "train_seconds": fitted.seconds,
        "seconds_per_epoch": fitted.seconds / max(n, 1),
    }
    if n:
        out.update({f"final_{k}": cur[k][-1] for k in METRIC_KEYS if k != "lr"})
    if status == "FINISHED":
        out["test_auc"] = _auc(fitted.net, split.X_test, split.y_test)
    return out


def end_tags(fitted, reason):
    tags = {}
    if fitted.diverged_at is not None:
        tags[TAG_DIVERGED] = str(fitted.diverged_at)
    if reason:
        tags[TAG_FAILURE] = reason
    return tags


def _auc(net, X, y):
    p_shape = net.layer_sizes[-1]
    if len(np.unique(y)) < max(2, p_shape):  # one-vs-rest needs every class in the test part
        return None
    from sklearn.metrics import roc_auc_score

    p = net.forward(X)
    return float(roc_auc_score(y, p[:, 0] if p.shape[1] == 1 else p, multi_class="ovr"))


def write_files(art, run, fitted, split, status, environment, log_plots=True, mark=None):
    """The run's files under ``art``: curves.parquet, config.yaml, environment.txt, plots/;
    ``mark(phase)`` is told when the data files and when the plots are written."""
    mark = mark or (lambda phase: None)
    import pandas as pd
    import yaml

    from .. import plots

    art = Path(art)
    (art / "plots").mkdir(parents=True)
    cur = fitted.curves.done()
    pd.DataFrame({"epoch": cur["epoch"], **{k: cur[k] for k in METRIC_KEYS}}).to_parquet(
        art / "curves.parquet", index=False
    )
    (art / "config.yaml").write_text(yaml.safe_dump(run.values, sort_keys=False, allow_unicode=True))
    (art / "environment.txt").write_text(environment)
    mark("curves_config_env")
    if log_plots and fitted.curves.n:
        name = run.label
        plots.loss_curve(cur, art / "plots" / "loss_curve.png", name)
        if status != "KILLED" and fitted.net is not None:
            plots.decision_boundary(
                fitted.net,
                split.X_train,
                split.y_train,
                split.X_test,
                split.y_test,
                art / "plots" / "decision_boundary.png",
                name,
                same_points=split.test_is_train,
            )
        mark("plots")
