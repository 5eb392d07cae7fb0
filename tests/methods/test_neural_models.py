"""The five neural baselines: reference sizes, checkpoint compatibility, input checks, training step.

Reference figures: ``shared/reference/models.md`` §2 (params exact, MACs per clip from
``torch.utils.flop_counter``). Parameter counts and MACs are measured on the ``meta`` device at the
reference shape itself — shapes only, no arithmetic — so the check is exact (no scaling from a
shorter clip) and takes well under a second per model.

The expected state-dict keys and shapes below were written from the toolbox model files
(``ubicomplab/rPPG-Toolbox`` ``neural_methods/model/{PhysNet,DeepPhys,TS_CAN,EfficientPhys,PhysFormer}.py``),
not from our modules: they are what a published toolbox checkpoint contains (after the
``module.`` DataParallel prefix is stripped).
"""

from __future__ import annotations

import torch
import pytest
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark.method import MethodConfigError
from methods.deepphys import DeepPhysMethod
from methods.efficientphys import EfficientPhysMethod
from methods.physformer import CDC_T, PhysFormer, loss_weights
from methods.physnet import PhysNet
from methods.tscan import TSM, TSCANMethod

METHODS = {
    "physnet": PhysNet,
    "deepphys": DeepPhysMethod,
    "tscan": TSCANMethod,
    "efficientphys": EfficientPhysMethod,
    "physformer": PhysFormer,
}


# -- expected state dicts, transcribed from the reference code --------------------------------------
def _conv(prefix: str, shape: tuple, bias: bool = True) -> dict:
    out = {f"{prefix}.weight": shape}
    if bias:
        out[f"{prefix}.bias"] = (shape[0],)
    return out


def _bn(prefix: str, c: int) -> dict:
    return {
        f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": (),
    }


def _ln(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def expected_physnet() -> dict:
    sd = {**_conv("ConvBlock1.0", (16, 3, 1, 5, 5)), **_bn("ConvBlock1.1", 16),
          **_conv("ConvBlock2.0", (32, 16, 3, 3, 3)), **_bn("ConvBlock2.1", 32),
          **_conv("ConvBlock3.0", (64, 32, 3, 3, 3)), **_bn("ConvBlock3.1", 64)}
    for i in range(4, 10):
        sd |= {**_conv(f"ConvBlock{i}.0", (64, 64, 3, 3, 3)), **_bn(f"ConvBlock{i}.1", 64)}
    for up in ("upsample", "upsample2"):                 # ConvTranspose3d weight: (in, out, kT, kH, kW)
        sd |= {**_conv(f"{up}.0", (64, 64, 4, 1, 1)), **_bn(f"{up}.1", 64)}
    sd |= _conv("ConvBlock10", (1, 64, 1, 1, 1))
    return sd


def _can_convs(appearance: bool) -> dict:
    sd = {**_conv("motion_conv1", (32, 3, 3, 3)), **_conv("motion_conv2", (32, 32, 3, 3)),
          **_conv("motion_conv3", (64, 32, 3, 3)), **_conv("motion_conv4", (64, 64, 3, 3))}
    if appearance:
        sd |= {**_conv("apperance_conv1", (32, 3, 3, 3)), **_conv("apperance_conv2", (32, 32, 3, 3)),
               **_conv("apperance_conv3", (64, 32, 3, 3)), **_conv("apperance_conv4", (64, 64, 3, 3))}
    sd |= {**_conv("apperance_att_conv1", (1, 32, 1, 1)), **_conv("apperance_att_conv2", (1, 64, 1, 1)),
           **_conv("final_dense_1", (128, 16384)), **_conv("final_dense_2", (1, 128))}
    return sd


def expected_deepphys() -> dict:
    return _can_convs(appearance=True)


def expected_efficientphys() -> dict:
    return {**_can_convs(appearance=False), **_bn("batch_norm", 3)}


def expected_physformer() -> dict:
    sd = _conv("patch_embedding", (96, 96, 4, 4, 4))
    for stage in (1, 2, 3):
        for blk in range(4):
            p = f"transformer{stage}.blocks.{blk}"
            sd |= {
                **_conv(f"{p}.attn.proj_q.0.conv", (96, 96, 3, 3, 3), bias=False), **_bn(f"{p}.attn.proj_q.1", 96),
                **_conv(f"{p}.attn.proj_k.0.conv", (96, 96, 3, 3, 3), bias=False), **_bn(f"{p}.attn.proj_k.1", 96),
                **_conv(f"{p}.attn.proj_v.0", (96, 96, 1, 1, 1), bias=False),
                **_conv(f"{p}.proj", (96, 96)), **_ln(f"{p}.norm1", 96),
                **_conv(f"{p}.pwff.fc1.0", (144, 96, 1, 1, 1), bias=False), **_bn(f"{p}.pwff.fc1.1", 144),
                **_conv(f"{p}.pwff.STConv.0", (144, 1, 3, 3, 3), bias=False), **_bn(f"{p}.pwff.STConv.1", 144),
                **_conv(f"{p}.pwff.fc2.0", (96, 144, 1, 1, 1), bias=False), **_bn(f"{p}.pwff.fc2.1", 96),
                **_ln(f"{p}.norm2", 96),
            }
    sd |= {**_conv("Stem0.0", (24, 3, 1, 5, 5)), **_bn("Stem0.1", 24),
           **_conv("Stem1.0", (48, 24, 3, 3, 3)), **_bn("Stem1.1", 48),
           **_conv("Stem2.0", (96, 48, 3, 3, 3)), **_bn("Stem2.1", 96),
           **_conv("upsample.1", (96, 96, 3, 1, 1)), **_bn("upsample.2", 96),
           **_conv("upsample2.1", (48, 96, 3, 1, 1)), **_bn("upsample2.2", 48),
           **_conv("ConvBlockLast", (1, 48, 1))}
    return sd


EXPECTED_STATE = {
    "physnet": expected_physnet,
    "deepphys": expected_deepphys,
    "tscan": expected_deepphys,          # TSM modules hold no weights
    "efficientphys": expected_efficientphys,
    "physformer": expected_physformer,
}
#: models.md §2: exact parameter counts and MACs per reference clip (G).
REFERENCE = {
    "physnet": (768_577, 17.56),
    "deepphys": (2_228_643, 40.87),
    "tscan": (2_228_643, 40.87),
    "efficientphys": (2_163_081, 20.64),
    "physformer": (7_380_865, 51.23),
}


def _meta_model(name: str, **cfg) -> tuple:
    method = METHODS[name](**cfg)
    with torch.device("meta"):
        model = method.build_model()
    return method, model


def _n_params_expected(sd: dict) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(int(torch.Size(s).numel()) for k, s in sd.items() if not k.endswith(buffers))


# -- sizes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(METHODS))
def test_state_dict_matches_reference_keys_and_shapes(name):
    _, model = _meta_model(name)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = EXPECTED_STATE[name]()
    assert sorted(set(want) - set(got)) == [], "keys missing vs the reference"
    assert sorted(set(got) - set(want)) == [], "keys the reference does not have"
    assert {k: got[k] for k in want if got[k] != want[k]} == {}
    # The transcription itself adds up to the published count.
    assert _n_params_expected(want) == REFERENCE[name][0]


@pytest.mark.parametrize("name", list(METHODS))
def test_params_and_macs_at_reference_shape(name):
    method, model = _meta_model(name)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == REFERENCE[name][0]
    c, t, h, w = method.example_shape()
    with torch.device("meta"):
        batch = {"frames": torch.zeros(1, c, t, h, w)}
    model.eval()
    with FlopCounterMode(display=False) as counter:
        out = method.forward(model, batch)
    assert tuple(method.signal(out).shape) == (1, t)
    macs_g = counter.get_total_flops() / 2 / 1e9
    assert macs_g == pytest.approx(REFERENCE[name][1], rel=0.02)


def test_reference_input_specs():
    shapes = {name: cls().example_shape() for name, cls in METHODS.items()}
    assert shapes == {
        "physnet": (3, 128, 72, 72),
        "deepphys": (6, 180, 72, 72),
        "tscan": (6, 180, 72, 72),
        "efficientphys": (3, 180, 72, 72),
        "physformer": (3, 160, 128, 128),
    }
    assert DeepPhysMethod.input.transforms == ("diff_normalized", "standardized")
    assert EfficientPhysMethod.input.transforms == ("standardized",)
    assert all(cls().signal_is_derivative for cls in METHODS.values())


@pytest.mark.parametrize("size, width", [(36, 3136), (96, 30976), (128, 57600)])
def test_can_family_other_supported_sizes(size, width):
    for name in ("deepphys", "tscan", "efficientphys"):
        _, model = _meta_model(name, size=size)
        assert tuple(model.final_dense_1.weight.shape) == (128, width)


def test_physformer_smaller_frames_keep_the_reference_state_dict():
    """The quick preset (64×64: a 2×2 token grid) can load a reference-shape checkpoint."""
    _, ref = _meta_model("physformer")
    _, small = _meta_model("physformer", frames=32, size=64)
    assert {k: v.shape for k, v in small.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


# -- bad input → clear errors ------------------------------------------------------------------------
def test_checkpoint_of_another_model_is_rejected(tmp_path):
    path = tmp_path / "physnet.pth"
    torch.save(PhysNet(frames=8, size=16).build_model().state_dict(), path)
    with pytest.raises(MethodConfigError, match=r"physnet\.pth.*deepphys.*missing keys.*unexpected keys"):
        DeepPhysMethod(size=36, frames=20).load_checkpoint(path)


def test_checkpoint_of_another_input_size_is_rejected(tmp_path):
    path = tmp_path / "deepphys72.pth"
    torch.save(DeepPhysMethod(size=72).build_model().state_dict(), path)
    with pytest.raises(MethodConfigError, match=r"shape mismatch.*final_dense_1\.weight.*\(128, 16384\).*\(128, 3136\)"):
        DeepPhysMethod(size=36).load_checkpoint(path)


def test_toolbox_style_checkpoint_loads_strictly(tmp_path):
    """A DataParallel-saved state dict (``module.`` prefix, as the toolbox saves) loads and is used."""
    torch.manual_seed(0)
    src = TSCANMethod(frames=20, size=36)
    model = src.build_model()
    path = tmp_path / "tscan.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    dst = TSCANMethod(frames=20, size=36)
    dst.load_checkpoint(path)
    batch = {"frames": torch.randn(1, 6, 20, 36, 36)}
    model.eval(), dst.get_model().eval()
    torch.testing.assert_close(dst.forward(dst.get_model(), batch), src.forward(model, batch))


def test_missing_checkpoint_file(tmp_path):
    path = tmp_path / "nowhere" / "physformer.pth"
    with pytest.raises(FileNotFoundError, match="nowhere/physformer.pth"):
        PhysFormer(size=64, frames=32).load_checkpoint(path)


@pytest.mark.parametrize(
    "name, cfg, match",
    [
        ("deepphys", {"size": 50}, r"size 50.*\[36, 72, 96, 128\]"),
        ("tscan", {"size": 64}, r"size 64.*\[36, 72, 96, 128\]"),
        ("efficientphys", {"size": 100}, r"size 100"),
        ("tscan", {"frames": 25}, r"25 must be a multiple of frame_depth=10"),
        ("efficientphys", {"frames": 30, "frame_depth": 4}, r"frame_depth=4"),
        ("physnet", {"frames": 30}, r"multiple of 4"),
        ("physnet", {"size": 8}, r">= 16"),
        ("physformer", {"size": 72}, r"size 72 is not a multiple of 32"),
        ("physformer", {"frames": 150}, r"multiple of 4"),
        ("physformer", {"loss_schedule": "cosine"}, r"loss_schedule"),
    ],
)
def test_unsupported_configuration_raises(name, cfg, match):
    with pytest.raises(MethodConfigError, match=match):
        METHODS[name](**cfg).build_model()


def test_wrong_clip_shape_is_a_clear_error():
    method = PhysNet(frames=8, size=16)
    model = method.build_model()
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)=\(3, 8, 16, 16\).*\(1, 3, 12, 16, 16\)"):
        method.forward(model, {"frames": torch.zeros(1, 3, 12, 16, 16)})
    with pytest.raises(ValueError, match="built for T=8"):               # the module guards itself too
        model(torch.zeros(1, 3, 12, 16, 16))
    deepphys = DeepPhysMethod(frames=20, size=36)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        deepphys.forward(deepphys.build_model(), {"frames": torch.zeros(1, 3, 20, 36, 36)})  # 3 ≠ 6 channels


# -- behaviour ------------------------------------------------------------------------------------
def test_can_flattening_keeps_frame_order():
    """out[b, t] is the model applied to frame t of clip b (no mixing of clips or frames)."""
    torch.manual_seed(0)
    method = DeepPhysMethod(frames=20, size=36)
    model = method.build_model().eval()
    x = torch.randn(2, 6, 20, 36, 36)
    out = method.forward(model, {"frames": x})
    single = model(x[1, :, 7][None])                     # clip 1, frame 7 → (1, 1)
    torch.testing.assert_close(out[1, 7], single[0, 0])


def test_tsm_shifts_within_segments_only():
    x = torch.arange(20, dtype=torch.float32).view(20, 1, 1, 1).repeat(1, 3, 1, 1)   # value = frame index
    y = TSM(n_segment=10)(x)[:, :, 0, 0]
    assert y[:, 0].tolist() == [*range(1, 10), 0, *range(11, 20), 0]        # channel 0 ← next frame
    assert y[:, 1].tolist() == [0, *range(0, 9), 0, *range(10, 19)]         # channel 1 ← previous frame
    assert y[:, 2].tolist() == list(range(20))                              # channel 2 unchanged


def test_efficientphys_differences_each_chunk_on_its_own():
    """Unlike the toolbox's flattened diff, a clip's output does not depend on its batch neighbour."""
    torch.manual_seed(0)
    method = EfficientPhysMethod(frames=20, size=36)
    model = method.build_model().eval()
    x = torch.randn(2, 3, 20, 36, 36)
    together = method.forward(model, {"frames": x})
    for i in range(2):
        torch.testing.assert_close(together[i : i + 1], method.forward(model, {"frames": x[i : i + 1]}))
    # The toolbox's flattened diff would make clip 0's last output see clip 1's first frame:
    flat = torch.cat([x.permute(0, 2, 1, 3, 4).reshape(40, 3, 36, 36), x[1, :, -1][None]])
    toolbox = model(flat, n_chunks=1).view(2, 20)
    assert not torch.allclose(toolbox[0], together[0])
    torch.testing.assert_close(toolbox[1], together[1])      # the last clip is the same either way


def test_cdc_t_equals_conv_with_centre_corrected_kernel():
    """y = W∗x − θ·(w_d∗x) is one 3×3×3 conv whose centre tap is lowered by θ·w_d."""
    torch.manual_seed(0)
    layer = CDC_T(4, 5, 3, padding=1, theta=0.7)
    x = torch.randn(2, 4, 6, 5, 5)
    w = layer.conv.weight.detach().clone()
    w_d = w[:, :, 0].sum(dim=(2, 3)) + w[:, :, 2].sum(dim=(2, 3))
    w[:, :, 1, 1, 1] -= 0.7 * w_d
    torch.testing.assert_close(layer(x), torch.nn.functional.conv3d(x, w, padding=1), rtol=1e-4, atol=1e-5)


def test_physformer_loss_weights_and_loss_terms():
    assert loss_weights(0, 25) == (0.1, 1.0)
    assert loss_weights(12, 25)[1] == pytest.approx(5 ** (12 / 25))
    assert loss_weights(10, 10, "toolbox") == (1.0, 1.0) and loss_weights(11, 30, "toolbox") == (0.05, 5.0)
    method = PhysFormer(frames=32, size=32)
    fs = torch.tensor([30.0, 30.0])
    t = torch.arange(32) / 30.0
    label = torch.stack([torch.sin(2 * torch.pi * 1.5 * t), torch.sin(2 * torch.pi * 2.0 * t)])
    batch = {"label": label, "fps": fs}
    good = method.loss((label.clone(),), batch, epoch=3, num_epochs=10)
    wrong = method.loss((label.flip(0),), batch, epoch=3, num_epochs=10)
    a, b = loss_weights(3, 10)
    torch.testing.assert_close(good["loss"], a * good["neg_pearson"] + b * (good["freq_ce"] + good["dldl_kl"]))
    assert float(good["neg_pearson"]) < 1e-4
    assert float(good["loss"]) < float(wrong["loss"])


@pytest.mark.parametrize("name", list(METHODS))
def test_quick_preset_is_a_valid_input(name):
    cls = METHODS[name]
    method = cls(frames=cls.quick["frames"], size=cls.quick["size"])
    spec = method.input_spec()
    model = method.build_model().eval()
    with torch.no_grad():
        out = method.forward(model, {"frames": torch.zeros(1, method.in_channels, spec.frames, spec.size, spec.size)})
    assert tuple(method.signal(out).shape) == (1, spec.frames)


# -- a training step on tiny shapes -----------------------------------------------------------------
TINY = {
    "physnet": {"frames": 8, "size": 16},
    "deepphys": {"frames": 20, "size": 36},
    "tscan": {"frames": 20, "size": 36},
    "efficientphys": {"frames": 20, "size": 36},
    "physformer": {"frames": 32, "size": 32, "num_layers": 3},
}


@pytest.mark.parametrize("name", list(METHODS))
def test_training_step_gives_finite_loss_and_gradients(name):
    torch.manual_seed(0)
    method = METHODS[name](**TINY[name])
    model: nn.Module = method.build_model().train()
    spec = method.input_spec()
    batch = {
        "frames": torch.randn(2, method.in_channels, spec.frames, spec.size, spec.size),
        "label": torch.randn(2, spec.frames),
        "fps": torch.tensor([30.0, 25.0]),
    }
    out = method.forward(model, batch)
    assert tuple(method.signal(out).shape) == (2, spec.frames)
    loss = method.loss(out, batch, epoch=1, num_epochs=5)
    total = loss["loss"] if isinstance(loss, dict) else loss
    assert total.dim() == 0 and torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
