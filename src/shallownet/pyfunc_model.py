"""MLflow "model from code" for a trained shallownet MLP (logged by shallownet.tracking).

MLflow copies this file into the logged model and runs it at load time; the numpy-only
``model`` package travels with it as a code path, so loading needs neither Hydra nor this
project installed. ``predict`` returns class probabilities, (N,) P(class 1) for a sigmoid
output and (N, K) for softmax.
"""

import json

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


def net_from_npz(path):
    """Rebuild the MLP saved by shallownet.tracking.save_net."""
    from model import MLP

    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        net = MLP(
            meta["layer_sizes"],
            meta["hidden_activation"],
            meta["output_activation"],
            dtype=meta["dtype"],
            leaky_relu_alpha=meta["leaky_relu_alpha"],
        )
        n = len(meta["layer_sizes"]) - 1
        net.weights = [f[f"W{i}"] for i in range(n)]
        net.biases = [f[f"b{i}"] for i in range(n)]
    return net


class ShallowNetModel(PythonModel):
    def load_context(self, context):
        self.net = net_from_npz(context.artifacts["weights"])

    def predict(self, context, model_input: np.ndarray, params=None):  # a DataFrame works too
        X = model_input.to_numpy() if hasattr(model_input, "to_numpy") else np.asarray(model_input)
        p = self.net.forward(X.astype(self.net.dtype, copy=False))  # (N, K)
        return p[:, 0] if p.shape[1] == 1 else p


mlflow.models.set_model(ShallowNetModel())
