"""What the recorder is told and what it answers (``record.recorder``): plain values that cross
a process boundary (pickled), in shallownet's words (run ids, statuses, keys), no MLflow entity.

    Ticket     a run to claim: its name, tags, params, dataset input, identity and parent
    Claimed    the claim's answer: our RUNNING run, or the run that makes it redundant
    RunRecord  what a fitted run leaves in the store's rows: summary, curves, model weights
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ticket:
    """A configuration about to train. The recorder adds who owns the run (the process that
    trains it: ``owner_pid``) and the environment's provenance to ``tags``."""

    name: str
    tags: dict
    params: list  # [(key, value)]
    config_hash: str
    run_key: str
    data_fingerprint: str
    compete: bool  # a sweep's job (not force=true): skip it when an identical run exists
    owner_pid: int  # the process that trains the run: its death leaves the run to be closed
    parent: str | None = None
    dataset: dict | None = None  # the fields of an MLflow Dataset (the run's training data)


@dataclass(frozen=True)
class Skip:
    """The run that makes a claim redundant: FINISHED, or an older one in progress."""

    run_id: str
    status: str
    test_accuracy: float | None


@dataclass(frozen=True)
class Claimed:
    run_id: str | None = None  # our RUNNING run; None when the configuration is skipped
    skipped_for: Skip | None = None
    retrain: str = ""  # why an earlier FINISHED run of the same config does not count


@dataclass(frozen=True)
class RunRecord:
    """A fitted run's metrics and model: the summary metrics (step 0), the curves of the epochs
    done ({key: (n,) array}) of the ``planned`` ones (also written to curves.parquet in the
    folder ``files``), and the weights file of the model to log (None: no model). The folder
    is logged apart (``log_files``), once the caller has written its other files. A FINISHED
    run's ``test_scores`` (its outputs on the test part) and ``test_labels`` become its test
    AUC in the summary when it is recorded (``contents.with_test_auc``)."""

    summary: dict
    curves: dict
    planned: int
    max_points: int
    already: int  # curve points the pulse already sent
    files: str
    weights: str | None = None
    feature_names: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    test_scores: object = None  # (N_te,) or (N_te, K) array, or None
    test_labels: object = None  # (N_te,) int array with test_scores, else None
