"""Training: gradients by backpropagation through time, losses, optimisers, the loop."""

from composer.training.backprop import Workspace, evaluate, grad
from composer.training.loop import Epoch, TrainResult, train
from composer.training.losses import LOSSES
from composer.training.optim import OPTIMIZERS, make_optimizer

__all__ = [
    "grad",
    "evaluate",
    "Workspace",
    "train",
    "Epoch",
    "TrainResult",
    "LOSSES",
    "OPTIMIZERS",
    "make_optimizer",
]
