"""Public checkpoints (``archs/weights.py``): our EDSR, RCAN and SwinIR read BasicSR's and the original
authors' key layouts.

The foreign state dicts here are built from the key names of BasicSR's ``edsr_arch.py``,
``rcan_arch.py``, ``swinir_arch.py`` and of EDSR-PyTorch / RCAN (written out below, not taken from the
mapping under test); EDSR and RCAN are checked against a functional forward that reads the foreign
dict directly, in the foreign code's order of operations. The same loads against BasicSR's own classes
and spandrel run in the integration environment (``tests/integrations/real_frameworks/run_integration.py``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_sr_losses.archs import TINY_OVERRIDES, create_model, export_state_dict, load_weights
from contrastive_sr_losses.archs.weights import read_state_dict

MEAN = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)


def _random(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def _conv(shapes: dict, name: str, cin: int, cout: int, k: int = 3) -> None:
    shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, k, k), (cout,)


def basicsr_edsr(nf: int, nb: int, scale: int) -> dict[str, tuple[int, ...]]:
    """Keys of BasicSR's ``EDSR(3, 3, num_feat=nf, num_block=nb, upscale=scale)`` (x2 / x4)."""
    s: dict[str, tuple[int, ...]] = {}
    _conv(s, "conv_first", 3, nf)
    for i in range(nb):
        _conv(s, f"body.{i}.conv1", nf, nf)
        _conv(s, f"body.{i}.conv2", nf, nf)
    _conv(s, "conv_after_body", nf, nf)
    for k in range({2: 1, 4: 2}[scale]):
        _conv(s, f"upsample.{2 * k}", nf, 4 * nf)
    _conv(s, "conv_last", nf, 3)
    return s


def original_rcan(nf: int, ng: int, nb: int, red: int, scale: int) -> dict[str, tuple[int, ...]]:
    """Keys of the authors' RCAN (``RCAN_TrainCode/code/model/rcan.py``), mean-shift convs included."""
    s: dict[str, tuple[int, ...]] = {}
    for m in ("sub_mean", "add_mean"):
        _conv(s, m, 3, 3, 1)
    _conv(s, "head.0", 3, nf)
    for g in range(ng):
        for b in range(nb):
            _conv(s, f"body.{g}.body.{b}.body.0", nf, nf)
            _conv(s, f"body.{g}.body.{b}.body.2", nf, nf)
            _conv(s, f"body.{g}.body.{b}.body.3.conv_du.0", nf, nf // red, 1)
            _conv(s, f"body.{g}.body.{b}.body.3.conv_du.2", nf // red, nf, 1)
        _conv(s, f"body.{g}.body.{nb}", nf, nf)
    _conv(s, f"body.{ng}", nf, nf)
    for k in range({2: 1, 4: 2}[scale]):
        _conv(s, f"tail.0.{2 * k}", nf, 4 * nf)
    _conv(s, "tail.1", nf, 3)
    return s


def with_mean_shift(state: dict, img_range: float = 255.0) -> dict:
    eye = torch.eye(3).view(3, 3, 1, 1)
    bias = img_range * MEAN.flatten()
    return {**state, "sub_mean.weight": eye, "sub_mean.bias": -bias, "add_mean.weight": eye, "add_mean.bias": bias}


def up(sd: dict, x: torch.Tensor, names: list[str]) -> torch.Tensor:
    for n in names:
        x = F.pixel_shuffle(F.conv2d(x, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=1), 2)
    return x


def basicsr_edsr_forward(sd: dict, x: torch.Tensor, nb: int, n_up: int) -> torch.Tensor:
    """BasicSR ``EDSR.forward`` on the raw dict, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    c = lambda n, t: F.conv2d(t, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=1)  # noqa: E731
    x = (x - MEAN.double()) * 255.0
    x = c("conv_first", x)
    res = x
    for i in range(nb):
        res = res + c(f"body.{i}.conv2", F.relu(c(f"body.{i}.conv1", res)))
    res = c("conv_after_body", res) + x
    return c("conv_last", up(sd, res, [f"upsample.{2 * k}" for k in range(n_up)])) / 255.0 + MEAN.double()


def original_rcan_forward(sd: dict, x: torch.Tensor, ng: int, nb: int, n_up: int) -> torch.Tensor:
    """The authors' ``RCAN.forward`` on [0, 255] data (input x 255, output / 255) on the raw dict, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    c = lambda n, t, p=1: F.conv2d(t, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=p)  # noqa: E731
    x = c("sub_mean", x * 255.0, 0)
    x = c("head.0", x)
    res = x
    for g in range(ng):
        y = res
        for b in range(nb):
            p = f"body.{g}.body.{b}.body"
            r = c(f"{p}.2", F.relu(c(f"{p}.0", y)))
            a = torch.sigmoid(c(f"{p}.3.conv_du.2", F.relu(c(f"{p}.3.conv_du.0", r.mean((2, 3), keepdim=True), 0)), 0))
            y = y + r * a
        res = res + c(f"body.{g}.body.{nb}", y)
    res = c(f"body.{ng}", res) + x
    return c("add_mean", c("tail.1", up(sd, res, [f"tail.0.{2 * k}" for k in range(n_up)])), 0) / 255.0


def test_basicsr_edsr_layout_loads_strictly_with_basicsr_outputs():
    sd = _random(basicsr_edsr(16, 2, 4))
    model = create_model("edsr_baseline", 4, weights={"params": sd}, n_resblocks=2, n_feats=16).double()
    assert (model.weights_info.layout, model.weights_info.key) == ("basicsr", "params")
    x = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(model(x), basicsr_edsr_forward(sd, x, 2, 2), rtol=0, atol=1e-10)


def test_original_rcan_layout_with_mean_shift_and_module_prefix():
    sd = with_mean_shift(_random(original_rcan(16, 2, 2, 4, 2)))
    wrapped = {"state_dict": {f"module.{k}": v for k, v in sd.items()}}
    model = create_model("rcan", 2, weights=wrapped, **TINY_OVERRIDES["rcan"]).double()
    assert (model.weights_info.layout, model.weights_info.key) == ("original", "state_dict")
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    # the mean-shift constants are float32 in both: 255 * mean rounds differently from mean, ~1e-8 here
    torch.testing.assert_close(model(x), original_rcan_forward(sd, x, 2, 2, 1), rtol=0, atol=1e-7)


def test_original_edsr_mean_shift_of_another_range_is_refused_with_the_fix():
    names = {k.replace("conv_first", "head.0"): v for k, v in basicsr_edsr(16, 2, 2).items()}  # shapes only
    names = {k.replace("conv_after_body", "body.2").replace("conv_last", "tail.1").replace("upsample.", "tail.0."): v
             for k, v in names.items()}
    names = {k.replace(".conv1", ".body.0").replace(".conv2", ".body.2"): v for k, v in names.items()}
    sd = with_mean_shift(_random(names), img_range=1.0)
    with pytest.raises(ValueError, match="sub_mean.bias .*img_range"):
        create_model("edsr_baseline", 2, weights=sd, n_resblocks=2, n_feats=16)
    model = create_model("edsr_baseline", 2, weights=sd, n_resblocks=2, n_feats=16, img_range=1.0)
    assert model.weights_info.layout == "original"


def test_basicsr_swinir_layout_puts_each_tensor_in_its_module(tmp_path):
    model = create_model("swinir_light", 2, **TINY_OVERRIDES["swinir_light"])
    ref = export_state_dict(model, "basicsr", img_size=16)
    # names from BasicSR's SwinIR: patch_embed.norm, layers.i.residual_group.blocks.j.{norm1,attn,norm2,mlp.fc1,fc2}
    for key in ("patch_embed.norm.weight", "layers.1.residual_group.blocks.0.mlp.fc1.weight",
                "layers.0.residual_group.blocks.1.attn.relative_position_bias_table",
                "layers.0.residual_group.blocks.1.attn_mask", "layers.1.conv.bias", "upsample.0.weight"):
        assert key in ref
    g = torch.Generator().manual_seed(1)
    sd = {k: (v if "index" in k or "mask" in k else torch.randn(v.shape, generator=g)) for k, v in ref.items()}
    torch.save({"params_ema": sd, "params": {}}, tmp_path / "swinir.pth")
    loaded = create_model("swinir_light", 2, weights=tmp_path / "swinir.pth", **TINY_OVERRIDES["swinir_light"])
    assert (loaded.weights_info.layout, loaded.weights_info.key) == ("basicsr", "params_ema")
    assert loaded.weights_info.source.endswith("swinir.pth")
    torch.testing.assert_close(loaded.blocks[1].layers[0].mlp[0].weight, sd["layers.1.residual_group.blocks.0.mlp.fc1.weight"])
    torch.testing.assert_close(loaded.embed_norm.bias, sd["patch_embed.norm.bias"])
    torch.testing.assert_close(loaded.blocks[0].layers[1].attn.qkv.weight, sd["layers.0.residual_group.blocks.1.attn.qkv.weight"])


@pytest.mark.parametrize("name", ["edsr_baseline", "rcan", "swinir_light"])
@pytest.mark.parametrize("layout", ["ours", "basicsr", "original"])
def test_export_then_load_round_trips_with_equal_outputs(name, layout):
    torch.manual_seed(0)
    model = create_model(name, 2, **TINY_OVERRIDES[name]).eval()
    again = create_model(name, 2, weights=export_state_dict(model, layout), **TINY_OVERRIDES[name]).eval()
    assert again.weights_info.layout == ("basicsr" if name == "swinir_light" and layout == "original" else layout)
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


def test_our_layouts_share_few_keys_with_basicsr():
    for name, shared in (("edsr_baseline", 0), ("rcan", 0), ("swinir_light", 8)):
        model = create_model(name, 4, **TINY_OVERRIDES[name])
        assert len(model.state_dict().keys() & export_state_dict(model, "basicsr").keys()) == shared


def test_wrong_sizes_and_non_state_dicts_fail_with_one_line_naming_the_problem():
    sd = _random(basicsr_edsr(16, 3, 4))
    with pytest.raises(ValueError, match=r"'basicsr' layout: 0 missing \(\), 4 unexpected \(body\.2\.conv1\.weight"):
        create_model("edsr_baseline", 4, weights=sd, n_resblocks=2, n_feats=16)
    with pytest.raises(ValueError, match=r"tail\.0\.0\.weight has shape \(64, 16, 3, 3\) in the file, \(144, 16, 3, 3\)"):
        create_model("edsr_baseline", 3, weights=_random(basicsr_edsr(16, 2, 2)), n_resblocks=2, n_feats=16)
    with pytest.raises(TypeError, match="entry 'iter' is a int"):
        read_state_dict({"iter": 3})
    with pytest.raises(FileNotFoundError, match="weights: no such file"):
        create_model("rcan", 2, weights="/nonexistent/rcan.pth")
    with pytest.raises(ValueError, match="layout must be one of \\('ours',\\)"):
        export_state_dict(create_model("rrlfn", 2, **TINY_OVERRIDES["rrlfn"]), "basicsr")


def test_load_weights_is_strict_for_networks_without_foreign_layouts():
    model = create_model("gidrn", 2, **TINY_OVERRIDES["gidrn"])
    state = dict(model.state_dict())
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="1 missing"):
        load_weights(create_model("gidrn", 2, **TINY_OVERRIDES["gidrn"]), state)


def test_train_init_from_reads_a_basicsr_file_renamed_and_partial(tmp_path):
    import srkit.train as train

    x2 = create_model("edsr_baseline", 2, n_resblocks=2, n_feats=16)
    torch.save({"params": export_state_dict(x2, "basicsr")}, tmp_path / "edsr_x2_basicsr.pth")
    x4 = create_model("edsr_baseline", 4, n_resblocks=2, n_feats=16)
    lines: list[str] = []
    train.init_from(x4, tmp_path / "edsr_x2_basicsr.pth", lines.append)
    assert lines == [f"init from {tmp_path / 'edsr_x2_basicsr.pth'} (basicsr layout): 16/18 tensors loaded; "
                     "fresh: tail.0.2.weight, tail.0.2.bias"]
    torch.testing.assert_close(x4.body[0].body[2].weight, x2.body[0].body[2].weight)
    torch.save({"iter": 3}, tmp_path / "not_weights.pth")
    with pytest.raises(train.UsageError, match="no model state dict in it"):
        train.init_from(x4, tmp_path / "not_weights.pth", lines.append)
