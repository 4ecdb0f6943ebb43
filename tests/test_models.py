import json
import subprocess
import sys

import pytest
import torch

from peakmixer.cli import main
from peakmixer.models import EXTRACTORS, MIXERS, build_model, count_params, profile_model


def small(extractor: str, mixer: str, **kw):
    args = dict(
        n_classes=7, width=16, mixer_layers=2, mlp_layers=2, input_length=256, hidden=32, mlp_hidden=32
    )
    if extractor == "respeak":
        args["blocks"] = 3
    return build_model(extractor, mixer, **(args | kw))


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("mixer", MIXERS)
def test_forward_backward_every_model(extractor, mixer):
    torch.manual_seed(0)
    model = small(extractor, mixer)
    x = torch.randn(4, 1, 256)
    feats = model.forward_features(x)
    assert feats.dim() == 3 and feats.shape[:2] == (4, 16)
    logits = model.forward_head(feats)
    assert logits.shape == (4, 7)
    assert torch.isfinite(logits).all()
    assert torch.equal(model(x), logits)
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters not used in forward: {missing}"


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_batch_of_one_in_eval_and_2d_input(extractor):
    model = small(extractor, "mlpmixer").eval()
    with torch.no_grad():
        one = model(torch.randn(1, 256))
        assert one.shape == (1, 7)


@pytest.mark.parametrize("length", [1000, 1024, 1800])
def test_no_hard_coded_lengths(length):
    for extractor in EXTRACTORS:
        for mixer in MIXERS:
            model = small(extractor, mixer, input_length=length).eval()
            with torch.no_grad():
                assert model(torch.randn(2, 1, length)).shape == (2, 7)


def test_wrong_shaped_input_is_a_clear_error():
    model = small("respeak", "mlpmixer").eval()
    with pytest.raises(ValueError, match=r"expected spectra of shape .*256.*got \(2, 1, 300\)"):
        model(torch.randn(2, 1, 300))
    with pytest.raises(ValueError, match="got"):
        model(torch.randn(2, 3, 256))


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="unknown mixer 'mlpmix'"):
        build_model("respeak", "mlpmix", n_classes=3)
    with pytest.raises(ValueError, match="unknown extractor"):
        build_model("resnet", "none", n_classes=3)
    with pytest.raises(TypeError, match="unknown option.*'hiden'"):
        build_model("respeak", "mlpmixer", n_classes=3, hiden=5)
    with pytest.raises(ValueError, match="fixed topology"):
        build_model("cnnpeak", "none", n_classes=3, blocks=3)
    with pytest.raises(ValueError, match="too short"):
        build_model("respeak", "none", n_classes=3, input_length=4)


def test_shared_norm_ties_every_layernorm():
    tied = small("respeak", "mlpmixer", shared_norm=True)
    norms = {id(m) for m in tied.mixer.modules() if isinstance(m, torch.nn.LayerNorm)}
    assert len(norms) == 1
    untied = small("respeak", "mlpmixer")
    # one per sub-block (2 x layers) + the output norm
    assert len({id(m) for m in untied.mixer.modules() if isinstance(m, torch.nn.LayerNorm)}) == 2 * 2 + 1
    assert count_params(untied) - count_params(tied) == 2 * 2 * 2 * 16


def test_mixer_names_follow_the_paper():
    model = small("respeak", "mlpmixer", width=24)
    block = model.mixer.blocks[0]
    # token mixing acts along positions (L' = 16 for 256 points and 3 blocks), channel mixing along C = 24
    assert block.token_mixing[0].in_features == model.extractor.out_length == 16
    assert block.channel_mixing[0].in_features == 24


# The paper's sizes (UPSTREAM_SPEC §1.2; thop MACs at batch 1, K = 957, without the dead Linear).
PARITY = [
    ("none", 160, 0.749e9, 7.62e6),
    ("mlpmixer", 160, 0.764e9, 7.61e6),
    ("mlpmixer", 256, 1.939e9, 18.29e6),
    ("mlpmixer", 64, 0.126e9, 1.54e6),
]


@pytest.mark.parametrize("mixer,width,macs,params", PARITY)
def test_parity_with_the_paper_via_cli(capsys, mixer, width, macs, params):
    argv = [
        "profile",
        "--extractor",
        "respeak",
        "--mixer",
        mixer,
        "--width",
        str(width),
        "--blocks",
        "6",
        "--mixer-layers",
        "4",
        "--n-classes",
        "957",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["macs"] == pytest.approx(macs, rel=0.02)
    assert out["params"] == pytest.approx(params, rel=0.02)
    assert out["flops"] == 2 * out["macs"]


def test_profile_module_entry_point():
    cmd = [sys.executable, "-m", "peakmixer", "profile", "--width", "64", "--n-classes", "17", "--json"]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert out["model"] == "ResPeak-64x6 + MLPMixer-4"
    assert out["params"] == count_params(build_model("respeak", "mlpmixer", n_classes=17, width=64))


def test_profile_leaves_batchnorm_statistics_alone():
    model = small("respeak", "none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training


def test_reset_head_for_finetuning():
    model = small("cnnpeak", "mlpmixer")
    model.reset_head(3)
    assert model(torch.randn(2, 1, 256)).shape == (2, 3)
    assert model.n_classes == 3


def test_cnnpeak_level1_convs_run_once_and_cost_matches_upstream():
    model = build_model("cnnpeak", "none", n_classes=30, width=16).eval()
    calls = []
    for conv in model.extractor.peak.level1:
        conv.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        model(torch.randn(2, 1, 1024))
    assert len(calls) == 3
    cost = profile_model(model)
    # UPSTREAM_SPEC §1.5: 0.0056 GMACs (thop, which also counts BatchNorm), 0.093 M params at a=2, K=30
    assert cost["params"] == pytest.approx(0.093e6, rel=0.01)
    assert cost["macs"] == pytest.approx(0.0056e9, rel=0.06)


def test_transformer_cost_includes_attention():
    c, tokens, hidden = 16, 16, 32  # ResPeak 16 x 3 blocks on 256 points -> 16 tokens
    one, two = (profile_model(small("respeak", "transformer", mixer_layers=n))["macs"] for n in (1, 2))
    per_layer = tokens * c * 3 * c + tokens * c * c + 2 * tokens * c * hidden + 2 * tokens * tokens * c
    assert two - one == per_layer
