"""Non-neural baselines recause is held against, one module each.

Every module of this package is imported by ``recause.models.registry``, where each baseline registers
itself by name: adding one is adding a module (README: add a model). The three shipped here are
re-exported for short imports.
"""

from recause.models.baselines.ease import EASE
from recause.models.baselines.itemknn import ItemKNN
from recause.models.baselines.pop import Pop

__all__ = ["EASE", "ItemKNN", "Pop"]
