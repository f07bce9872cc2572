"""Bad inputs that once gave a silent wrong result or a raw error, now a one-line ``TypeError`` /
``ValueError`` naming the argument: the reference networks.
"""

from __future__ import annotations

import pytest

from contrastive_sr_losses import (
    create_model,
)


@pytest.mark.parametrize("ratio", [0, 0.001, -1, float("nan"), float("inf")])
def test_swinir_mlp_ratio_must_give_an_mlp(ratio):
    with pytest.raises(ValueError, match="mlp_ratio must"):
        create_model("swinir_light", 2, mlp_ratio=ratio, embed_dim=12, depths=(1,), heads=(2,))


def test_create_model_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"name must be a model name \(str\), one of edsr_baseline"):
        create_model(["edsr"])


@pytest.mark.parametrize("mean, error", [("abc", TypeError), ((0.4, 0.4), ValueError), (5, TypeError), ((0.4, "a", 0.4), TypeError)])
def test_edsr_rgb_mean(mean, error):
    with pytest.raises(error, match="rgb_mean must"):
        create_model("edsr", 2, rgb_mean=mean, n_resblocks=1, n_feats=8)
