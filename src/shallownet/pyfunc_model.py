"""MLflow "model from code" for a trained shallownet MLP (logged by shallownet.record.tracking).

MLflow copies this file into the logged model and runs it at load time; the numpy-only
``model`` package travels with it as a code path, so loading needs neither Hydra nor this
project installed. ``predict`` takes a DataFrame of the run's named features (the model's
signature: MLflow refuses missing columns and reorders misordered ones) and returns every
class's probability: a DataFrame with one column per class, named by its label (a sigmoid
output's two classes: P(class 0) = 1 - P(class 1)).
"""

import json

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


def net_from_npz(path):
    """(the MLP saved by shallownet.record.contents.save_net, its class names)."""
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
    return net, meta.get("classes", ["0", "1"])


class ShallowNetModel(PythonModel):
    def load_context(self, context):
        self.net, self.classes = net_from_npz(context.artifacts["weights"])

    def predict(self, context, model_input: pd.DataFrame, params=None):
        """(N, K) probabilities, one column per class, of the (N, F) named features."""
        X = model_input.to_numpy() if hasattr(model_input, "to_numpy") else np.asarray(model_input)
        p = self.net.forward(X.astype(self.net.dtype, copy=False))  # (N, K), or (N, 1): P(class 1)
        if p.shape[1] == 1:
            p = np.hstack([1 - p, p])
        return pd.DataFrame(p, columns=self.classes, index=getattr(model_input, "index", None))


mlflow.models.set_model(ShallowNetModel())
