"""Non-neural baselines recause is held against: Pop, ItemKNN, EASE."""

from recause.models.base import Recommender
from recause.models.baselines.ease import EASE
from recause.models.baselines.itemknn import ItemKNN
from recause.models.baselines.pop import Pop

BASELINES: dict[str, type[Recommender]] = {m.name: m for m in (Pop, ItemKNN, EASE)}

__all__ = ["BASELINES", "EASE", "ItemKNN", "Pop"]
