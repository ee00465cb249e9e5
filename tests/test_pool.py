"""The sweep's compute workers (shallownet.compute, shallownet.sweep.pool) on real processes:
they train a task into what the recorder needs without ever importing MLflow or Hydra, a
signal to one of them costs its task only (KILLED, with the epochs done and the signal named),
a worker killed outright is reported as such, and the pool replaces the workers that ended."""

import os
import signal
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import numpy as np
import pytest
from test_runconfig import composed

from shallownet import config, datasets
from shallownet.record import contents
from shallownet.record.messages import RunRecord
from shallownet.compute import READY, STARTED, Task
from shallownet.sweep.pool import Pool


def task(tmp_path, epochs, seeds=(0, 1)):
    """The runs of one job (seeds stacked) of tutorial 000's defaults, for ``epochs`` epochs."""
    c = composed(f"train.epochs={epochs}")
    split = datasets.load(c["dataset"])
    runs = tuple(config.RunConfig.of({**c, "seed": s}, lambda h: h, None) for s in seeds)
    return Task(runs, split, str(tmp_path / "task"))


PROBE = (
    "import atexit, sys; "
    "atexit.register(lambda: print(sorted(m for m in ('mlflow', 'hydra', 'omegaconf', 'sklearn') if m in sys.modules), "
    "file=sys.stderr)); "
    "from shallownet.compute import main; main(sys.argv)"
)


def test_a_worker_fits_a_task_without_ever_importing_mlflow_hydra_or_sklearn(tmp_path):
    """The worker sends each FINISHED run's test outputs; its AUC is computed where the data
    was prepared (scikit-learn is loaded there for the split), as the record gets it."""
    import socket

    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(theirs.fileno()), str(os.getpid())],
        pass_fds=[theirs.fileno()],
        stderr=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    conn = Connection(ours.detach())
    assert conn.recv() == READY
    sent = task(tmp_path, 300)
    conn.send(sent)
    assert conn.recv() == STARTED
    fitted, leaving = conn.recv()
    conn.close()
    assert not leaving
    _, err = proc.communicate(timeout=60)
    assert err.strip().splitlines()[-1] == "[]", err
    assert [f.status for f in fitted] == ["FINISHED", "FINISHED"]
    split = sent.split
    for f in fitted:
        assert f.record.summary["epochs_completed"] == 300 and len(f.record.curves["train_loss"]) == 300
        assert "test_auc" not in f.record.summary and f.record.test_scores.shape == split.y_test.shape
        assert np.array_equal(f.record.test_labels, split.y_test)
        auc = contents.with_test_auc(f.record).summary["test_auc"]
        assert 0.5 < auc <= 1.0
        assert os.path.isfile(f.record.weights) and 0.5 < f.test_accuracy <= 1.0
        files = {p.name for p in (tmp_path / "task").rglob("*") if p.is_file()}
        assert {"config.yaml", "loss_curve.png", "decision_boundary.png"} <= files


class _Outputs:
    """A net that outputs ``p`` # (N, K) on the test part (what ``test_scores`` reads of it)."""

    def __init__(self, p):
        self.p, self.layer_sizes = p, [2, 3, p.shape[1]]

    def forward(self, X):
        return self.p


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_test_auc_of_sigmoid_and_softmax_outputs_is_scikit_learns(k):
    """One sigmoid output, a two-way softmax (its class-1 column) and a three-way softmax
    (one-vs-rest): the AUC the record gets is roc_auc_score's on the scores a worker sends."""
    from types import SimpleNamespace

    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(k)
    y = np.arange(60) % max(k, 2)  # (N,)
    p = rng.random((60, k))
    if k > 1:
        p /= p.sum(axis=1, keepdims=True)
    split = SimpleNamespace(X_test=np.zeros((60, 2)), y_test=y)
    scores = contents.test_scores(_Outputs(p), split, "FINISHED")
    assert contents.test_scores(_Outputs(p), split, "KILLED") is None
    record = contents.with_test_auc(RunRecord({}, {}, 0, 0, 0, "", test_scores=scores, test_labels=y))
    want = roc_auc_score(y, p[:, -1]) if k <= 2 else roc_auc_score(y, p, multi_class="ovr")
    assert record.summary["test_auc"] == want and record.test_scores is None and record.test_labels is None
    assert 0.3 < want < 0.7  # random scores: about chance, so the test reads real numbers


@pytest.fixture
def pool():
    p = Pool(2)
    assert len(p.wait_ready()) == 2
    yield p
    p.close()


def until_busy_training(pool, key, seconds=0.5):
    """The worker holding ``key``, once it began the task (its stop handlers in place) and is
    ``seconds`` into its training (hundreds of epochs)."""
    (worker,) = [w for w in pool.busy() if w.task == key]
    deadline = time.time() + 60
    while not worker.started and time.time() < deadline:
        assert not pool.collect(0.1)  # nothing ends before it began
    assert worker.started
    time.sleep(seconds)
    return worker


def test_sigterm_to_one_worker_returns_its_task_killed_and_the_pool_replaces_it(tmp_path, pool):
    a, b = pool.idle()
    assert pool.give(a, "long", task(tmp_path / "a", 400000))
    assert pool.give(b, "short", task(tmp_path / "b", 300, seeds=(3,)))
    victim = until_busy_training(pool, "long")
    os.kill(victim.pid, signal.SIGTERM)
    done = {}
    deadline = time.time() + 60
    while len(done) < 2 and time.time() < deadline:
        done.update({key: (fitted, w) for key, fitted, w in pool.collect(0.5)})
    (killed, _), (short, _) = done["long"], done["short"]
    for f in killed:
        n = f.record.summary["epochs_completed"]
        assert f.status == "KILLED" and 0 < n < 400000
        assert f.reason == f"interrupted at epoch {n} (SIGTERM)"
        assert len(f.record.curves["train_loss"]) == n
    assert short[0].status == "FINISHED"
    victim.proc.wait(timeout=10)  # the signalled worker took no further task: it ended
    pool.collect(0.5)
    assert pool.ended(victim) and len(pool.workers) == 1
    pool.refill(2)
    assert len(pool.wait_ready()) == 2 and victim.pid not in {w.pid for w in pool.workers}


def test_a_worker_killed_outright_is_reported_without_a_result(tmp_path, pool):
    worker = pool.idle()[0]
    assert pool.give(worker, "job", task(tmp_path, 400000, seeds=(0,)))
    until_busy_training(pool, "job")
    os.kill(worker.pid, signal.SIGKILL)
    deadline, done = time.time() + 30, []
    while not done and time.time() < deadline:
        done = pool.collect(0.5)
    [(key, fitted, w)] = done
    assert (key, fitted, w.proc.returncode) == ("job", None, -signal.SIGKILL)


def test_a_stop_forwarded_to_the_workers_returns_every_task_in_flight(tmp_path, pool):
    for i, worker in enumerate(pool.idle()):
        assert pool.give(worker, i, task(tmp_path / str(i), 400000, seeds=(i,)))
    for i in range(2):
        until_busy_training(pool, i)
    pool.forward(signal.SIGINT)
    done = pool.drain(timeout=60)
    assert sorted(key for key, _, _ in done) == [0, 1]
    for _, fitted, _ in done:
        assert fitted[0].status == "KILLED" and fitted[0].reason.endswith("(SIGINT (Ctrl-C))")
