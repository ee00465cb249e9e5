"""The names every part of shallownet (train, sweep, report, reproduce, demo) and its users'
queries rely on: tags, metric keys, run statuses and their exit codes, defined here once.

Imports nothing, so that any module can use them without loading the store's code (or MLflow).
"""

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_EXPERIMENT = "shallownet"

# the per-epoch curves of a run, as MLflow metric keys
METRIC_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr")

TAG_ROLE = "shallownet.role"  # parent | child | single | reproduction
TAG_STUDY = "shallownet.experiment"  # the experiment file a sweep ran
TAG_SWEEP = "sweep_id"
TAG_CONFIG_HASH = "config_hash"
TAG_DATA = "data_fingerprint"
TAG_CODE = "code_fingerprint"
TAG_RUN_KEY = "run_key"  # config + data + code: what a skip compares (shallownet.identity)
TAG_FAILURE = "failure_reason"
TAG_DIVERGED = "diverged_at_epoch"
TAG_REPRODUCES = "reproduces"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI (markdown)
TAG_OWNER = "shallownet.owner"  # JSON {host, boot, pid, start}: who will end this run
TAG_HEARTBEAT = "shallownet.heartbeat"  # ms since the epoch, refreshed while the run lives
TAG_SESSION = "shallownet.session"  # the sweep invocation that created a child run
TAG_SKIPPED_FOR = "shallownet.skipped_for"  # a claim that stepped aside: the run that won
TAG_MIGRATED = "shallownet.migrated_from"  # a run copied by server migrate: its id there

MEMBERS_ARTIFACT = "sweep/members.json"  # a parent's {"run_ids": [...]}: every config's run

# A run's status in the store (MLflow's), and how a run or a job ended (an Outcome's status).
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"
SKIPPED = "SKIPPED"  # an identical run FINISHED or is in progress: nothing trained
DIVERGED = "DIVERGED"  # recorded FAILED, with TAG_DIVERGED
CONFIG_ERROR = "CONFIG_ERROR"  # bad config or data: nothing recorded
TRACKING_ERROR = "TRACKING_ERROR"  # the store cannot be used

# status -> the process's exit code. KILLED is not here: it exits 128 + the signal's number
# (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), which only the stop knows (shallownet.stop).
EXIT_CODES = {
    FINISHED: 0,
    SKIPPED: 0,
    DIVERGED: 1,
    FAILED: 1,
    CONFIG_ERROR: 2,
    TRACKING_ERROR: 3,
}
