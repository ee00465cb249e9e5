"""W&B peer: tutorial 000's study as a Hydra multirun (joblib, 2 jobs at once), one W&B run per
job, written the way W&B's documentation shows it. Run it offline, with WANDB_MODE=offline:

    WANDB_MODE=offline python wandb_sweep.py -m hydra.sweep.dir=/tmp/sw

Docs followed (W&B 0.31):
- Hydra integration, https://docs.wandb.ai/guides/integrations/hydra/ : the Hydra config
  converted with OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True) and passed
  to wandb.init(config=...), metrics with run.log.
- Offline mode, https://docs.wandb.ai/support/run_wandb_offline/ : WANDB_MODE=offline saves
  the run locally (no login, no network; `wandb sync` would upload it later; never done here).
- run.log, https://docs.wandb.ai/ref/python/log/ : "run.log is not intended to be called more
  than a few times per second. For optimal performance, limit your logging to once every N
  iterations"; and https://docs.wandb.ai/support/models/articles/rate-limit-exceeded-on-metric-logging
  ("log every N epochs instead of every epoch"). So the curves are logged during training at
  200 evenly spread epochs (shallownet's 200 points per curve), with "epoch" logged as the
  x-axis metric (https://docs.wandb.ai/support/models/articles/how-do-i-log-metrics-on-two-time-scales).
  ``log_every_epoch=true`` logs all 2000 epochs instead.
- wandb.Image, https://docs.wandb.ai/ref/python/data-types/image/ : each matplotlib figure
  logged as wandb.Image(fig) (W&B renders it to PNG itself).
- Log models, https://docs.wandb.ai/guides/track/log/log-models (run.log_model(path=..., name=...)): the
  trained weights (.npz) as a model artifact, since shallownet and the MLflow peer log a
  model too; ``wandb.log_model=false`` leaves it out.
- run.finish() at the end, as the offline example's `with wandb.init(...) as run:` does on exit.
"""

import os
import tempfile

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import wandb  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import study  # noqa: E402


@hydra.main(version_base=None, config_path="conf", config_name="wandb")
def main(cfg):
    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    name = f"{cfg.activation}-seed{cfg.seed}"
    run = wandb.init(project=cfg.wandb.project, name=name, config=config)

    data = study.load_data(config["data"])
    if cfg.wandb.log_every_epoch:
        config = dict(config, max_points=cfg.epochs)
    net, curves, _ = study.fit(config, data, on_record=lambda e, values: run.log({"epoch": e, **values}))

    fig1 = study.loss_curve_figure(curves, name)
    fig2 = study.decision_boundary_figure(net, data, name)
    run.log({"loss_curve": wandb.Image(fig1), "decision_boundary": wandb.Image(fig2)})
    plt.close(fig1)
    plt.close(fig2)

    if cfg.wandb.log_model:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "net.npz")
            np.savez(
                path,
                **{f"W{i}": W for i, W in enumerate(net.weights)},
                **{f"b{i}": b for i, b in enumerate(net.biases)},
            )
            run.log_model(path=path, name=f"net-{name}")
    run.finish()
    return float(curves["test_accuracy"][-1])


if __name__ == "__main__":
    main()
