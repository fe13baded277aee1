"""A joint recommender: ID embeddings + an adaptor over item text + side features, with causal debiasing.

Pure functions and typed objects only (no file I/O): a DVC stage reads the inputs and saves
``JointModel.arrays()`` / ``config()``.
"""

from recause.models.joint.debias import ips_weights, propensities
from recause.models.joint.model import JointModel, TrainStats
from recause.models.joint.params import JointParams
from recause.models.joint.train import planned_steps, train_joint

__all__ = ["JointModel", "JointParams", "TrainStats", "ips_weights", "planned_steps", "propensities", "train_joint"]
