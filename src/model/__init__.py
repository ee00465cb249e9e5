"""shallownet's NumPy network: MLP, train and the lookup tables. Imports numpy only."""

from ._base import ACTIVATIONS, DERIVATIVES, INITIALIZERS, LOSS_OUTPUT, LOSSES, SCHEDULES
from .mlp import HIDDEN_ACTIVATIONS, MLP, OUTPUT_ACTIVATIONS, History, train

__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "INITIALIZERS",
    "LOSSES",
    "LOSS_OUTPUT",
    "SCHEDULES",
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "MLP",
    "History",
    "train",
]
