"""Tests of the region tiling shared by the reference and the fast paths."""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses.functional import from_blocks, region_tiles, to_blocks


@pytest.mark.parametrize("h,w,region", [(8, 8, 4), (9, 11, 4), (5, 3, 3), (7, 7, 7), (16, 13, 8), (4, 6, 1)])
def test_tiles_cover_every_pixel_once(h, w, region):
    cover = torch.zeros(h, w, dtype=torch.int64)
    for tile in region_tiles(h, w, region):
        assert 1 <= tile.bh <= region and 1 <= tile.bw <= region
        assert (tile.y1 - tile.y0) % tile.bh == 0 and (tile.x1 - tile.x0) % tile.bw == 0
        cover[tile.y0 : tile.y1, tile.x0 : tile.x1] += 1
    assert torch.all(cover == 1)


def test_partial_blocks_layout():
    tiles = region_tiles(10, 7, 4)
    assert [(t.bh, t.bw, t.rows, t.cols) for t in tiles] == [(4, 4, 2, 1), (4, 3, 2, 1), (2, 4, 1, 1), (2, 3, 1, 1)]


def test_blocks_round_trip_and_order():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    b = to_blocks(x, 2, 3)
    assert b.shape == (2 * 2 * 2, 6, 3)
    # first block of image 0 holds pixels (0,0),(0,1),(0,2),(1,0),... of every channel
    torch.testing.assert_close(b[0, :, 0], x[0, 0, :2, :3].flatten())
    torch.testing.assert_close(b[1, :, 2], x[0, 2, :2, 3:].flatten())
    torch.testing.assert_close(from_blocks(b, 2, 2, 2, 2, 3), x)
    torch.testing.assert_close(to_blocks(x.to(memory_format=torch.channels_last), 2, 3), b)
