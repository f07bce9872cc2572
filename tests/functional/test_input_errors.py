"""Bad inputs that once gave a silent wrong result or a raw error, now a one-line ``TypeError`` /
``ValueError`` naming the argument: filters and wavelets.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_sr_losses import (
    dwt2,
    gaussian_blur2d,
    idwt2,
)


def test_gaussian_blur_circular_padding_larger_than_the_image():
    with pytest.raises(ValueError, match=r"circular padding of \d+ pixels .* needs H and W >= \d+, got an image of 2x2"):
        gaussian_blur2d(torch.rand(1, 1, 2, 2), 1.5, padding_mode="circular")
    assert gaussian_blur2d(torch.rand(1, 1, 2, 2), 0.5, padding_mode="circular").shape == (1, 1, 2, 2)


@pytest.mark.parametrize("size, error", [(("a", "b"), TypeError), (5, TypeError), ((4,), ValueError), ((0, 4), ValueError)])
def test_idwt2_size(size, error):
    bands = dwt2(torch.rand(1, 3, 8, 8))
    with pytest.raises(error, match="size must be a pair of ints"):
        idwt2(*bands, size=size)
