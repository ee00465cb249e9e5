"""What a finished (or stopped) training leaves in its run: the summary metrics, the end tags
and the files (curves.parquet with every epoch, config.yaml, environment.txt, the two plots).
Builds them locally; the recorder (``record.recorder``) sends them."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from .messages import RunRecord
from ..names import METRIC_KEYS, TAG_DIVERGED, TAG_FAILURE, TAG_PARENT, TAG_REPRODUCES, TAG_ROLE


def store_status(fit_status, interrupted):
    """The run's terminal status in MLflow: FINISHED only for a whole, uninterrupted run."""
    if interrupted or fit_status == "KILLED":
        return "KILLED"
    return "FINISHED" if fit_status == "FINISHED" else "FAILED"


def summary(fitted):
    """Summary metrics (step 0): final values, epochs done, timings. A FINISHED run's test AUC
    is added when it is recorded (``with_test_auc``), not in a compute worker."""
    cur, n = fitted.curves.done(), fitted.curves.n
    out = {
        "epochs_completed": n,
        "train_seconds": fitted.seconds,
        "seconds_per_epoch": fitted.seconds / max(n, 1),
    }
    if n:
        out.update({f"final_{k}": cur[k][-1] for k in METRIC_KEYS if k != "lr"})
    return out


def reproduction_tags(original_id):
    """A re-run of ``original_id`` (shallownet-reproduce): nested under it in the UI, and never
    counted as the run of its config."""
    return {TAG_REPRODUCES: original_id, TAG_ROLE: "reproduction", TAG_PARENT: original_id}


def end_tags(diverged_at, reason):
    tags = {}
    if diverged_at is not None:
        tags[TAG_DIVERGED] = str(diverged_at)
    if reason:
        tags[TAG_FAILURE] = reason
    return tags


def test_scores(net, split, status):
    """A FINISHED run's scores on the test part for its AUC: # (N_te,) for two classes (the
    sigmoid's output, or a two-way softmax's column of class 1), (N_te, K) for K > 2; None
    when there is no AUC to compute (one-vs-rest needs every class in the test part)."""
    if status != "FINISHED" or net is None or len(np.unique(split.y_test)) < max(2, net.layer_sizes[-1]):
        return None
    p = net.forward(split.X_test)  # (N_te, K)
    return p[:, -1] if p.shape[1] <= 2 else p


def scoring_is_loaded():
    """Whether scikit-learn is imported in this process already (for the data: make_classification,
    make_moons, or the split of a non-Playground dataset): a test AUC then costs nothing more
    here (``with_test_auc``)."""
    return "sklearn" in sys.modules


def load_scoring():
    """Import scikit-learn's metrics now (~0.7 s beside MLflow, ~1.3 s alone)."""
    import sklearn.metrics  # noqa: F401


def with_test_auc(record):
    """``record`` (``messages.RunRecord``) with its summary's test AUC, from its test scores and
    labels (scikit-learn's ``roc_auc_score``, one-vs-rest for K > 2); unchanged when it has
    none or has it already. The recorder computes it unless the process that trained has
    scikit-learn loaded (``scoring_is_loaded``): a run whose data needs none (XOR, the Playground
    datasets) never imports it where it trains, and its recorder loads it while the run trains
    (``load_scoring``)."""
    if record.test_scores is None:
        return record
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(record.test_labels, record.test_scores, multi_class="ovr"))
    return replace(record, summary={**record.summary, "test_auc": auc}, test_scores=None, test_labels=None)


def write_curves(art, curves):
    """curves.parquet under ``art``: every epoch done ({key: (n,) array}, with ``epoch``)."""
    import pandas as pd

    frame = pd.DataFrame({"epoch": curves["epoch"], **{k: curves[k] for k in METRIC_KEYS}})
    frame.to_parquet(Path(art) / "curves.parquet", index=False)


def record_of(fitted, run, split, status, folder, live_points=0):
    """What the recorder needs of a fitted run (``messages.RunRecord``): its summary and curves,
    and its weights saved under ``folder`` (a FINISHED run that logs its model). Its files are
    to be written to ``folder``/artifacts (made here)."""
    folder = Path(folder)
    art = folder / "artifacts"
    art.mkdir(parents=True)
    tr, weights = run.tracking, None
    if tr.log_model and status == "FINISHED":
        weights = folder / "net.npz"
        save_net(fitted.net, weights, split.classes)
    scores = test_scores(fitted.net, split, status)
    return RunRecord(
        summary=summary(fitted),
        test_scores=scores,
        test_labels=None if scores is None else split.y_test,
        curves=fitted.curves.done(),
        planned=fitted.curves.planned,
        max_points=tr.max_points,
        already=live_points,
        files=str(art),
        weights=weights and str(weights),
        feature_names=list(split.feature_names),
        classes=list(split.classes),
    )


def load_plotting():
    """Import matplotlib (~0.3 s) now, e.g. while waiting for the store."""
    from .. import plots  # noqa: F401


def write_environment(art, environment):
    """environment.txt under ``art``: the installed distributions (``provenance.pip_freeze``)."""
    (Path(art) / "environment.txt").write_text(environment)


def write_files(art, run, fitted, split, status, log_plots=True, mark=None):
    """The run's config.yaml and plots/ under ``art`` (curves.parquet and environment.txt are
    the recorder's: ``write_curves``, ``write_environment``); ``mark(phase)`` is told when the
    config and when the plots are written."""
    mark = mark or (lambda phase: None)
    import yaml

    from .. import plots

    art = Path(art)
    (art / "plots").mkdir(parents=True, exist_ok=True)
    cur = fitted.curves.done()
    (art / "config.yaml").write_text(yaml.safe_dump(run.values, sort_keys=False, allow_unicode=True))
    mark("config")
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


def save_net(net, path, classes=("0", "1")):
    """Weights, architecture and class names in one .npz: what the pyfunc model loads."""
    meta = {
        "classes": list(classes),
        "layer_sizes": net.layer_sizes,
        "hidden_activation": net.hidden_activation,
        "output_activation": net.output_activation,
        "dtype": net.dtype.name,
        "leaky_relu_alpha": net.leaky_relu_alpha,
    }
    arrays = {f"W{i}": W for i, W in enumerate(net.weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(net.biases)})
    np.savez(path, meta=json.dumps(meta), **arrays)
