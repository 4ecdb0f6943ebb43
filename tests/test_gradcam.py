"""Grad-CAM by channel subset and the attribution scores."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from peakmixer.attribution.gradcam import (
    CamSettings,
    ScoreSettings,
    channel_mask,
    grad_cam,
    layer_cam,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    sensitivity_scores,
)
from peakmixer.attribution.run_scores import fidelity_terms
from peakmixer.config import ConfigError
from peakmixer.ip import attach_ip
from peakmixer.models import MIXERS, build_model

KW = {"width": 6, "blocks": 2, "input_length": 64, "hidden": 16, "mlp_hidden": 16, "mixer_layers": 1}


def tiny(mixer="mlpmixer", ip="trainable", k=3, channels=9):
    torch.manual_seed(0)
    model = build_model("respeak", mixer, n_classes=k, **KW)
    return attach_ip(model, mode=ip, task="multilabel", channels=channels).eval()


def test_grad_cam_equals_the_hand_computation():
    model = tiny(ip="off")
    x = torch.randn(2, 1, 64)
    acts = {}
    model.extractor.stem.register_forward_hook(lambda m, i, o: acts.__setitem__("A", o))
    logits = model(x)
    A = acts["A"]  # (B, C, L1) after the first conv block
    (grad,) = torch.autograd.grad(logits[:, 2].sum(), A)
    hand = F.relu((grad.mean(-1, keepdim=True) * A).sum(1, keepdim=True))
    hand = F.interpolate(hand, size=64, mode="linear")
    hand = hand / hand.abs().amax(-1, keepdim=True)
    ours = grad_cam(model, x, 2, layer="stem")
    assert ours.shape == (2, 1, 64)
    torch.testing.assert_close(ours, hand.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mixer", MIXERS)
def test_the_channel_axis_is_the_one_reduced_for_every_mixer(mixer):
    model = tiny(mixer=mixer, ip="off")
    x = torch.randn(2, 1, 64)
    settings = CamSettings(layer="features", relu=False, normalize="none")
    raw = layer_cam(model, x, 1, settings)
    feats = model.mixer(model.extractor(x))  # (B, C=6, L'=4): channels first for every mixer
    assert feats.shape[1] == 6 and raw.shape == (2, 1, feats.shape[-1])
    feats = feats.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.forward_head(feats)[:, 1].sum(), feats)
    torch.testing.assert_close(raw, (grad.mean(-1, keepdim=True) * feats).sum(1, keepdim=True))


def test_specific_and_complementary_channels_partition_the_ip_map():
    model = tiny(k=3, channels=9)
    owner = torch.zeros(9)
    for k in range(3):
        own = channel_mask(model, k, "specific")
        rest = channel_mask(model, k, "complement")
        assert torch.equal(own + rest, torch.ones(9))
        owner += own
    assert torch.equal(owner, torch.ones(9))  # every channel belongs to exactly one class
    with pytest.raises(ValueError, match="needs a model with an interpretable path"):
        channel_mask(tiny(ip="off"), 0, "specific")


def test_a_class_specific_cam_goes_through_the_masked_pathway():
    model = tiny()
    x = torch.randn(4, 1, 64)
    maps = {c: grad_cam(model, x, [0, 1, 2, 0], channels=c) for c in ("all", "specific", "complement")}
    assert all(m.shape == (4, 1, 64) for m in maps.values())
    assert not torch.allclose(maps["all"], maps["specific"]) and not torch.allclose(
        maps["all"], maps["complement"]
    )
    assert (maps["all"] >= 0).all() and maps["all"].amax(-1).max() <= 1 + 1e-6


def test_captum_infidelity_and_sensitivity_run_and_are_reproducible():
    model = tiny()
    x = torch.rand(3, 1, 64)
    cam, score = CamSettings(channels="specific"), ScoreSettings(n_perturb_samples=4, sensitivity_samples=3)
    cams = grad_cam(model, x, [0, 1, 1], cam)
    inf = fidelity_terms(model, x, torch.tensor([0, 1, 1]), cams, cam, score)["infidelity"]
    sens = sensitivity_scores(model, x, [0, 1, 1], cam, score)
    assert inf.shape == sens.shape == (3,) and np.isfinite(inf).all() and (sens >= 0).all()
    again = fidelity_terms(model, x, torch.tensor([0, 1, 1]), cams, cam, score)["infidelity"]
    assert np.array_equal(inf, again)  # seeded
    with pytest.raises(ConfigError, match="normalize: true"):  # its share needs the fitted scale
        fidelity_terms(model, x, torch.tensor([0, 1, 1]), cams, cam, ScoreSettings(normalize=False))
    assert torch.equal(sens, sensitivity_scores(model, x, [0, 1, 1], cam, score))


def test_ground_truth_scores_for_an_oracle_and_a_uniform_attribution():
    mask = np.zeros((2, 100), bool)
    mask[0, 10:30] = True
    mask[1, 50:55] = True
    oracle = mask.astype(float)
    uniform = np.ones((2, 100))
    assert relevance_mass_accuracy(oracle, mask).tolist() == [1.0, 1.0]
    assert relevance_rank_accuracy(oracle, mask).tolist() == [1.0, 1.0]
    assert pointing_game(oracle, mask).tolist() == [1.0, 1.0]
    np.testing.assert_allclose(relevance_mass_accuracy(uniform, mask), mask.mean(1))  # the band fraction
    assert np.isnan(relevance_mass_accuracy(uniform[:1], np.zeros((1, 100), bool))).all()


def test_ground_truth_scores_agree_with_quantus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    a = rng.random((6, 1, 120))  # continuous: no ties, so the rank order is the same in both
    s = np.zeros((6, 1, 120))
    for i in range(6):
        start = rng.integers(0, 100)
        s[i, 0, start : start + rng.integers(3, 20)] = 1
    x, y = rng.random((6, 1, 120)), np.zeros(6, int)
    for ours, theirs in (
        (relevance_mass_accuracy, quantus.RelevanceMassAccuracy),
        (relevance_rank_accuracy, quantus.RelevanceRankAccuracy),
        (pointing_game, quantus.PointingGame),
    ):
        metric = theirs(disable_warnings=True)
        ref = metric(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s, channel_first=True)
        np.testing.assert_allclose(ours(a, s), np.asarray(ref, float), rtol=1e-9, err_msg=theirs.__name__)


def test_a_class_without_channels_is_left_out_of_the_scores_not_scored_best():
    from peakmixer.attribution.gradcam import ScoreSettings
    from peakmixer.attribution.run_scores import RunScoring, score_run

    model = tiny(k=3, channels=9)
    with torch.no_grad():  # class 2 owns no channel under the argmax rule
        model.correlation.copy_(torch.tensor([[5.0] * 5 + [0.0] * 4, [0.0] * 5 + [5.0] * 4, [-5.0] * 9]))
    x = torch.rand(6, 1, 64)
    y = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=torch.float32)
    masks = np.zeros((3, 64), bool)
    masks[:, 10:20] = True
    scoring = RunScoring(n_spectra=6, score=ScoreSettings(n_perturb_samples=2, sensitivity_samples=2))
    out = score_run(model, x, y, masks, "multilabel", scoring)
    assert out["scored_pairs"] == 9 and out["degenerate_pairs"] >= 3  # the three pairs of class 2
    assert np.isfinite(out["infidelity_mean"]) and out["infidelity_mean"] > 0
    assert 0 <= out["pointing_game_specific"] <= 1
    flat = np.zeros((1, 64))
    assert (
        np.isnan(pointing_game(flat, masks[:1])).all()
        and np.isnan(relevance_rank_accuracy(flat, masks[:1])).all()
    )
    assert np.isnan(relevance_mass_accuracy(flat, masks[:1])).all()
