"""``shallownet-train``: one Hydra-composed config -> NumPy training -> one MLflow run.

    shallownet-train                                   # tutorial 000's net, tanh
    shallownet-train activation=relu lr_schedule.lr=0.05
    shallownet-train -m experiment=tutorial000_activations   # a sweep: parent + child runs

Exit codes of a single run: 0 finished, 1 diverged or failed, 2 bad config or data,
3 tracking store unreachable, 130 interrupted (run ends KILLED).
"""

import gc
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from model import LOSSES, MLP, train

from . import config, datasets

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def emit(line, stream=None):
    """Write one whole line in one call: a sweep's jobs share the terminal, and print()'s
    separate writes of text and newline let two jobs' lines run into each other."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


def say(msg):
    emit(f"shallownet: {msg}", sys.stderr)


class Evaluator:
    """Loss and accuracy of the net on fixed data, for the per-epoch curves."""

    def __init__(self, net, X, y, loss):
        self.net, self.X, self.y = net, X, y
        self.Y = net.targets(y)  # (N, K)
        self.loss = LOSSES[loss]
        self.delta = np.empty_like(self.Y)

    def __call__(self, z=None):
        """(loss, accuracy); ``z`` are the logits of X when already known."""
        z = self.net.logits(self.X) if z is None else z  # (N, K)
        value = self.loss(self.Y, z, self.delta, self.net.output_activation)
        return value, self.accuracy(z)

    def accuracy(self, z):
        pred = (z[:, 0] > 0) if z.shape[1] == 1 else z.argmax(1)
        return float(np.count_nonzero(pred == self.y)) / len(self.y)


def make_net(c, split):
    """The MLP a validated config describes, sized for the data: F inputs, K outputs."""
    k = 1 if c["model"]["output"] == "sigmoid" else int(split.y_train.max()) + 1
    return MLP([split.X_train.shape[1], *c["model"]["hidden_sizes"], k], c["activation"]["name"],
               c["model"]["output"], c["initializer"]["name"], seed=c["seed"],
               dtype=c["train"]["dtype"], leaky_relu_alpha=c["activation"]["alpha"])


def write_artifacts(art, c, cur, net, split, status, mark):
    """Files of a run: curves.parquet (every epoch), config.yaml, environment.txt, plots/."""
    import pandas as pd

    from . import plots, tracking

    (art / "plots").mkdir(parents=True)
    columns = {"epoch": cur["epoch"], **{k: cur[k] for k in tracking.METRIC_KEYS}}
    pd.DataFrame(columns).to_parquet(art / "curves.parquet", index=False)
    (art / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(c)))
    (art / "environment.txt").write_text(tracking.pip_freeze())
    mark("curves_config_env")
    if c["tracking"]["log_plots"] and len(cur["epoch"]):
        name = config.run_name(c)
        plots.loss_curve(cur, art / "plots" / "loss_curve.png", name)
        if status != "KILLED":
            plots.decision_boundary(net, split.X_train, split.y_train, split.X_test, split.y_test,
                                    art / "plots" / "decision_boundary.png", name,
                                    same_points=split.test_is_train)
        mark("plots")


def _auc(net, X, y):
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    p = net.forward(X)
    return float(roc_auc_score(y, p[:, 0] if p.shape[1] == 1 else p, multi_class="ovr"))


def _outcome(hc, **info):
    """Leave the job's outcome beside its Hydra output: the sweep callback counts them."""
    if hc.mode == RunMode.MULTIRUN:
        path = Path(hc.runtime.output_dir) / "outcome.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, sort_keys=True))
        total = os.environ.get("SHALLOWNET_SWEEP_TOTAL", "?")
        acc = info.get("test_accuracy")
        acc = "-" if acc is None else f"{acc:.3f}"
        emit(f"[{hc.job.num + 1}/{total}] {info['shown'] or '(defaults)'}: {info['status']}"
             f" test_acc={acc} ({info.get('seconds', 0):.1f}s)")


def _stop(hc, code, message, overrides, status, shown=""):
    say(message)
    if hc.mode == RunMode.MULTIRUN:  # never raise inside a sweep: the other jobs go on
        _outcome(hc, status=status, overrides=overrides, shown=shown, message=message)
        return None
    sys.exit(code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(cfg):
    """Train one configuration and record it; returns the final test accuracy."""
    t_start = last = time.perf_counter()
    phases = {}  # seconds per phase, printed with SHALLOWNET_PROFILE=1 (make bench reads it)

    def mark(phase):
        nonlocal last
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - last
        last = now

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    overrides = " ".join(hc.overrides.task)
    shown = " ".join(o for o in hc.overrides.task  # what varies, for progress lines
                     if not o.startswith(("tracking.", "experiment=", "hparams_search=", "hydra")))
    try:
        c = config.validate(cfg)
        split = datasets.load(c["dataset"])
    except (config.ConfigError, datasets.DataError) as err:
        return _stop(hc, 2, f"config error: {err}", overrides, "CONFIG_ERROR", shown)
    mark("config_and_data")
    force = bool(cfg.get("force", False))
    c.pop("force", None)
    tr = c["tracking"]

    from . import tracking  # imports mlflow: only now that the config is known to be good

    try:
        client = tracking.connect(tr["uri"], tr["timeout"], tr["retries"])
        import mlflow

        mark("import_mlflow")  # and opening the store
        exp_id = os.environ.get("SHALLOWNET_EXPERIMENT_ID") if multirun else None
        exp_id = exp_id or tracking.ensure_experiment(tr["uri"], tr["experiment"], client)
        chash = config.config_hash(c)
        if multirun and not force:
            done = tracking.finished_run(client, exp_id, chash)
            if done:  # resume: this config already has a FINISHED run
                acc = done.data.metrics.get("final_test_accuracy")
                _outcome(hc, status="SKIPPED", overrides=overrides, shown=shown, run_id=done.info.run_id,
                         test_accuracy=acc, seconds=time.perf_counter() - t_start)
                return acc
    except Exception as err:  # unreachable server, locked or broken store
        return _stop(hc, 3, f"tracking store {tr['uri']} unusable: {str(err).splitlines()[0]}",
                     overrides, "TRACKING_ERROR", shown)

    name = config.run_name(c)
    net = make_net(c, split)
    tags = {
        "config_hash": chash,
        "data_fingerprint": split.fingerprint,
        "overrides": overrides,
        "n_params": str(net.n_params),
        "n_train": str(len(split.y_train)),
        "n_test": str(len(split.y_test)),
        "train_class_balance": f"{np.mean(split.y_train):.4f}",
        "test_class_balance": f"{np.mean(split.y_test):.4f}",
        "test_is_train": str(split.test_is_train).lower(),
        "shallownet.role": "child" if multirun else "single",
        **tracking.environment_tags(),
    }
    parent = os.environ.get("SHALLOWNET_PARENT_RUN_ID") if multirun else None
    if parent:
        tags["sweep_id"] = os.environ.get("SHALLOWNET_SWEEP_ID", "")
    from mlflow.entities import Param

    try:
        run_id = mlflow.start_run(experiment_id=exp_id, run_name=name, parent_run_id=parent,
                                  tags=tags).info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(config.flatten(c).items())])
    except Exception as err:
        return _stop(hc, 3, f"cannot create a run in {tr['uri']}: {str(err).splitlines()[0]}",
                     overrides, "TRACKING_ERROR", shown)
    mark("store_run_params")

    # ---------------------------------------------------------------- training
    epochs = c["train"]["epochs"]
    curves = {k: np.full(epochs, np.nan) for k in ("train_loss", "test_loss", "train_accuracy",
                                                    "test_accuracy", "lr")}
    ev_train = Evaluator(net, split.X_train, split.y_train, c["train"]["loss"])
    ev_test = Evaluator(net, split.X_test, split.y_test, c["train"]["loss"])
    count = [0]

    def on_epoch(e, loss, lr):
        curves["train_loss"][e] = loss
        curves["lr"][e] = lr
        curves["test_loss"][e], curves["test_accuracy"][e] = ev_test()
        z = net.train_logits  # full batch: the logits the loss was measured on
        curves["train_accuracy"][e] = ev_train.accuracy(net.logits(ev_train.X) if z is None else z)
        count[0] = e + 1

    status, reason, hist = "FINISHED", None, None
    if not multirun:
        old_term = signal.signal(signal.SIGTERM, _interrupt)
    t0 = time.perf_counter()
    try:
        hist = train(net, split.X_train, split.y_train, epochs=epochs,
                     lr=config.schedule_spec(c), loss=c["train"]["loss"],
                     batch_size=c["train"]["batch_size"], l2=c["train"]["l2"], seed=c["seed"],
                     callback=on_epoch, divergence_factor=c["train"]["divergence_factor"])
    except KeyboardInterrupt:
        status, reason = "KILLED", f"interrupted at epoch {count[0]}"
    except Exception as err:  # a bug or a numerical failure: keep what we have
        status, reason = "FAILED", f"{type(err).__name__}: {err}"
    train_seconds = time.perf_counter() - t0
    if not multirun:
        signal.signal(signal.SIGTERM, old_term)
    n = count[0]
    if hist is not None and hist.diverged_at is not None:
        status = "FAILED"
        reason = (f"diverged at epoch {hist.diverged_at}: loss {hist.diverged_loss:.4g} "
                  f"(initial {hist.loss[0] if len(hist.loss) else float('nan'):.4g}, "
                  f"limit {c['train']['divergence_factor']:g}x)")
    cur = {k: v[:n] for k, v in curves.items()}
    cur["epoch"] = np.arange(n)
    mark("train")

    # ---------------------------------------------------------------- recording
    try:
        summary = {"epochs_completed": n, "train_seconds": train_seconds,
                   "seconds_per_epoch": train_seconds / max(n, 1)}
        if n:
            summary.update(final_train_loss=cur["train_loss"][-1], final_test_loss=cur["test_loss"][-1],
                           final_train_accuracy=cur["train_accuracy"][-1],
                           final_test_accuracy=cur["test_accuracy"][-1])
        if status == "FINISHED":
            summary["test_auc"] = _auc(net, split.X_test, split.y_test)
        end_tags = {}
        if hist is not None and hist.diverged_at is not None:
            end_tags["diverged_at_epoch"] = str(hist.diverged_at)
        if reason:
            end_tags["failure_reason"] = reason
        from mlflow.entities import RunTag

        with tempfile.TemporaryDirectory() as tmp:
            model_id = None
            try:
                if tr["log_model"] and status == "FINISHED":
                    # Before the metrics: given none, MLflow links none to the model by itself
                    # (it would copy every point at step 0, the untrained net's losses too,
                    # reading each key's history back); the summaries below name the model.
                    model_id = tracking.log_model(net, split.X_train, tmp).model_id
                    mark("model")
            finally:  # the metrics land even when logging the model failed or was interrupted
                client.log_batch(run_id, metrics=tracking.metric_batch(cur, summary, tr["max_points"],
                                                                       model_id),
                                 tags=[RunTag(k, v) for k, v in end_tags.items()])
                mark("metrics")
            art = Path(tmp) / "artifacts"
            write_artifacts(art, c, cur, net, split, status, mark)
            client.log_artifacts(run_id, str(art))
            mark("artifacts")
        mlflow.end_run(status)
        mark("end_run")
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        status, reason = "KILLED", reason or "interrupted while logging"
    except Exception as err:
        try:
            mlflow.end_run("FAILED")
        except Exception:
            pass
        return _stop(hc, 3, f"recording run {run_id} failed: {str(err).splitlines()[0]}",
                     overrides, "TRACKING_ERROR", shown)

    if multirun:
        # A sweep's process runs job after job: collect this job's garbage, then freeze what
        # survives (modules imported on first use, caches), so that the collector's passes
        # during the next jobs, and loky's between them, walk only that job's own objects.
        gc.collect()
        gc.freeze()
        mark("gc")
    acc = float(cur["test_accuracy"][-1]) if n else None
    seconds = time.perf_counter() - t_start
    if os.environ.get("SHALLOWNET_PROFILE"):
        emit("shallownet-profile: " + json.dumps({k: round(v, 4) for k, v in phases.items()}),
             sys.stderr)
    if multirun:
        _outcome(hc, status="DIVERGED" if hist is not None and hist.diverged_at is not None else status,
                 overrides=overrides, shown=shown, run_id=run_id, test_accuracy=acc, seconds=seconds,
                 message=reason)
        return acc if status == "FINISHED" else 0.0
    if status == "FINISHED":
        print(f"shallownet: run {name} ({run_id}) finished in {seconds:.1f}s: "
              f"train_acc={cur['train_accuracy'][-1]:.3f} test_acc={acc:.3f} "
              f"test_loss={cur['test_loss'][-1]:.4f}", flush=True)
        return acc
    say(f"run {name} ({run_id}) {status}: {reason}")
    sys.exit(130 if status == "KILLED" else 1)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg):
    return run(cfg)


def main():
    """Console entry point: reject mistyped keys with the valid ones listed, then Hydra."""
    try:
        config.check_override_keys(sys.argv[1:])
    except config.ConfigError as err:
        say(f"config error: {err}")
        sys.exit(2)
    try:
        return hydra_main()
    except KeyboardInterrupt:  # a sweep's Ctrl-C: its runs end KILLED and the summary says so
        say("interrupted")
        sys.exit(130)
    finally:
        # Exit without the collector's final passes over every object that mlflow, sklearn and
        # matplotlib loaded: 0.8 s of interpreter shutdown here, 0.07 s frozen. Objects are
        # still freed and streams flushed; only the search for reference cycles is skipped.
        gc.freeze()


if __name__ == "__main__":
    main()
