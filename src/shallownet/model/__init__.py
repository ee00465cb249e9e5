"""shallownet's NumPy network: MLP, train and the lookup tables. Imports numpy only."""

from ._base import ACTIVATIONS, DERIVATIVES, INITIALIZERS, LOSS_OUTPUT, LOSSES, SCHEDULE_DEFAULTS, SCHEDULES
from .mlp import HIDDEN_ACTIVATIONS, MLP, OUTPUT_ACTIVATIONS, History, stacked_logits, train, train_stacked

__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "INITIALIZERS",
    "LOSSES",
    "LOSS_OUTPUT",
    "SCHEDULES",
    "SCHEDULE_DEFAULTS",
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "MLP",
    "History",
    "train",
    "train_stacked",
    "stacked_logits",
]
