"""Reusable pieces shared by the losses and metrics: region tiling, colour conversion."""

from .color import rgb_to_y
from .regions import Tile, from_blocks, region_tiles, to_blocks

__all__ = ["Tile", "region_tiles", "to_blocks", "from_blocks", "rgb_to_y"]
