"""A joint recommender: ID embeddings + an adaptor over item text + side features, with causal debiasing.

Pure functions and typed objects only (no file I/O): a DVC stage prepares a run with
``joint_training``, trains it under ``JointTraining.plan()`` (checkpoints, faults, out-of-memory
handling) and saves the ``JointModel`` that ``finish`` returns (``arrays()`` / ``config()``);
``train_joint`` does the same in memory. Training builds on the model (train -> model), never the reverse.
"""

from recause.config.joint import JointParams
from recause.models.joint.debias import ips_weights, propensities
from recause.models.joint.model import JointModel, TrainStats
from recause.models.joint.train import JointTraining, joint_training, train_joint

__all__ = [
    "JointModel",
    "JointParams",
    "JointTraining",
    "TrainStats",
    "ips_weights",
    "joint_training",
    "propensities",
    "train_joint",
]
