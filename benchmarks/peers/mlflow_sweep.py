"""Hydra + joblib + MLflow peer: tutorial 000's study as a Hydra multirun (joblib launcher, 2
jobs at once), one MLflow run per job on a sqlite store, written the way MLflow's
documentation shows it:

    python mlflow_sweep.py -m mlflow.tracking_uri=sqlite:////tmp/x/mlflow.db hydra.sweep.dir=/tmp/sw

Docs followed (MLflow 3.17):
- Tracking APIs, https://mlflow.org/docs/latest/ml/tracking/tracking-api : set_tracking_uri,
  set_experiment, `with mlflow.start_run():`, log_params.
- MlflowClient.log_batch, https://mlflow.org/docs/latest/python_api/mlflow.client.html#mlflow.client.MlflowClient.log_batch :
  the curves sent once, after training, as one log_batch of Metric(key, value, timestamp,
  step) at 200 evenly spread epochs per curve (the points shallownet sends). (The same page's
  log_metric for every epoch would be 2000 x 5 calls per run: far slower on sqlite.)
- mlflow.log_figure, https://mlflow.org/docs/latest/python_api/mlflow.html#mlflow.log_figure :
  its example, `fig, ax = plt.subplots()` then `mlflow.log_figure(fig, "figure.png")`, for the
  two figures.
- Custom Python models, https://mlflow.org/docs/latest/python_api/mlflow.pyfunc.html
  ("Creating custom Pyfunc models"): a PythonModel subclass holding the weights, logged with
  mlflow.pyfunc.log_model(name=..., python_model=..., signature=..., pip_requirements=...).
  Chosen: explicit pip_requirements (a documented argument, as shallownet does), so MLflow
  does not infer them by loading every model in a subprocess; `mlflow.infer_requirements=true`
  measures the default. The signature is inferred from 5 training rows (infer_signature),
  as shallownet's is; no input_example (MLflow would reload the model to check it).
"""

import time

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import study  # noqa: E402


class NetModel(mlflow.pyfunc.PythonModel):
    """The trained 3-4-1 net as a pyfunc model: predict gives P(class 1), (N,)."""

    def __init__(self, weights, biases, activation, alpha):
        self.weights, self.biases = [np.asarray(W) for W in weights], [np.asarray(b) for b in biases]
        self.activation, self.alpha = activation, alpha

    def predict(self, context, model_input, params=None):
        a = np.asarray(model_input, dtype=np.float64)
        (W1, W2), (b1, b2) = self.weights, self.biases
        z = a @ W1 + b1
        h = {
            "tanh": np.tanh,
            "relu": lambda v: np.maximum(v, 0.0),
            "leaky_relu": lambda v: np.maximum(v, self.alpha * v),
        }[self.activation](z)
        return 1.0 / (1.0 + np.exp(-(h @ W2 + b2)[:, 0]))


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@hydra.main(version_base=None, config_path="conf", config_name="mlflow")
def main(cfg):
    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    name = f"{cfg.activation}-seed{cfg.seed}"
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    mlflow.set_experiment(cfg.mlflow.experiment)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(flat({k: v for k, v in config.items() if k != "mlflow"}))

        data = study.load_data(config["data"])
        net, curves, _ = study.fit(config, data)

        now = int(time.time() * 1000)
        steps = study.recorded_epochs(cfg.epochs, cfg.max_points)
        mlflow.MlflowClient().log_batch(
            run.info.run_id,
            metrics=[Metric(key, float(curves[key][s]), now, int(s)) for key in study.CURVES for s in steps],
        )

        fig1 = study.loss_curve_figure(curves, name)
        mlflow.log_figure(fig1, "plots/loss_curve.png")
        plt.close(fig1)
        fig2 = study.decision_boundary_figure(net, data, name)
        mlflow.log_figure(fig2, "plots/decision_boundary.png")
        plt.close(fig2)

        model = NetModel(net.weights, net.biases, cfg.activation, cfg.leaky_relu_alpha)
        example = data[0][:5]
        reqs = (
            None
            if cfg.mlflow.infer_requirements
            else [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
        )
        mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=infer_signature(example, model.predict(None, example)),
            pip_requirements=reqs,
        )
    return float(curves["test_accuracy"][-1])


if __name__ == "__main__":
    main()
