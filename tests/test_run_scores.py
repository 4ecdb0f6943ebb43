"""A run's attribution scores per pair: the scale-free share of infidelity, chance, channel ownership."""

import numpy as np
import pytest
import torch
from torch import nn

from peakmixer.attribution.gradcam import CamSettings, ScoreSettings, relevance_mass_accuracy
from peakmixer.attribution.run_scores import (
    RunScoring,
    fidelity_terms,
    score_model,
    summarise,
)
from peakmixer.ip import attach_ip, channel_ownership, class_channels
from peakmixer.models import build_model

KW = {"width": 6, "blocks": 2, "input_length": 64, "hidden": 16, "mlp_hidden": 16, "mixer_layers": 1}
SCORE = ScoreSettings(n_perturb_samples=6, sensitivity_samples=2)


class Linear(nn.Module):
    """f(x) = W x: the logit's change under a perturbation I is exactly W_k · I."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.T


def test_the_share_is_zero_for_the_exact_gradient_of_a_linear_model_and_near_one_for_noise():
    torch.manual_seed(0)
    w = torch.randn(2, 32)
    model, x = Linear(w), torch.randn(5, 1, 32)
    classes = torch.tensor([0, 1, 1, 0, 1])
    gradient = w[classes].unsqueeze(1)  # the exact attribution: Iᵀa = Δf for every draw
    exact = fidelity_terms(model, x, classes, gradient, CamSettings(), SCORE)
    np.testing.assert_allclose(exact["infidelity_share"], 0, atol=1e-4)
    np.testing.assert_allclose(exact["rho"], 1, atol=1e-5)
    # a map 5x too large is as faithful: captum fits the scale, and the share does not see it either
    scaled = fidelity_terms(model, x, classes, 5 * gradient, CamSettings(), SCORE)
    np.testing.assert_allclose(scaled["infidelity_share"], 0, atol=1e-4)
    # E[Δf²] is the model's alone: a model twice as steep has 4x the infidelity of any map, the same share
    noise = torch.rand(5, 1, 32)
    one = fidelity_terms(model, x, classes, noise, CamSettings(), SCORE)
    two = fidelity_terms(Linear(2 * w), x, classes, noise, CamSettings(), SCORE)
    np.testing.assert_allclose(two["infidelity"], 4 * one["infidelity"], rtol=1e-4)
    np.testing.assert_allclose(two["infidelity_share"], one["infidelity_share"], rtol=1e-4)
    assert (one["infidelity_share"] > 0.3).all()  # a random map explains little of the change


def test_captums_infidelity_is_delta_f2_times_one_minus_rho_squared_on_a_network():
    torch.manual_seed(1)
    model = attach_ip(
        build_model("respeak", "mlpmixer", n_classes=3, **KW), mode="trainable", task="multilabel"
    )
    x, classes = torch.rand(7, 1, 64), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    cams = torch.rand(7, 1, 64)
    for channels in ("all", "specific"):
        t = fidelity_terms(model.eval(), x, classes, cams, CamSettings(channels=channels), SCORE)
        np.testing.assert_allclose(t["infidelity"], t["delta_f2"] * (1 - t["rho"] ** 2), rtol=2e-3)
        np.testing.assert_allclose(t["infidelity_share"], 1 - t["rho"] ** 2, rtol=2e-3)


def constructed(k: int = 3, channels: int = 9):
    """An IP model whose matrix gives class 0 channels 0-4, class 1 channels 5-8 and class 2 none."""
    torch.manual_seed(0)
    model = attach_ip(
        build_model("respeak", "mlpmixer", n_classes=k, **KW),
        mode="trainable",
        task="multilabel",
        channels=channels,
    )
    with torch.no_grad():
        model.correlation.copy_(torch.tensor([[5.0] * 5 + [0.0] * 4, [0.0] * 5 + [5.0] * 4, [-5.0] * 9]))
    return model.eval()


def test_ownership_rules_on_a_constructed_matrix():
    model = constructed()
    owned = channel_ownership(model)
    assert [c["channels_argmax"] for c in owned] == [5, 4, 0]
    assert [c["channels_topk"] for c in owned] == [3, 3, 3]  # C_ip // K each: every class owns some
    assert class_channels(model, 2, "argmax")[0].numel() == 0
    top = class_channels(model, 2, "topk")[0]
    assert top.numel() == 3
    assert channel_ownership(model, topk=2)[0]["channels_topk"] == 2


def test_pairs_of_a_class_without_channels_are_counted_not_scored_and_topk_scores_them():
    model = constructed()
    x = torch.rand(6, 1, 64)
    y = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=torch.float32)
    masks = np.zeros((3, 64), bool)
    masks[:, 10:20] = True
    scores = score_model(model, x, y, masks, "multilabel", RunScoring(n_spectra=6, score=SCORE))
    pairs = scores.pairs
    assert set(zip(pairs["channels"], pairs["rule"], strict=True)) == {
        ("all", ""),
        ("specific", "argmax"),
        ("complement", "argmax"),
        ("specific", "topk"),
        ("complement", "topk"),
    }
    argmax = pairs[(pairs["channels"] == "specific") & (pairs["rule"] == "argmax")]
    of_2 = argmax[argmax["class"] == 2]
    assert len(of_2) == 3 and not of_2["owned"].any() and of_2["infidelity"].isna().all()
    topk = pairs[(pairs["channels"] == "specific") & (pairs["rule"] == "topk")]
    assert topk["owned"].all()
    summary = scores.summary
    assert summary["scored_pairs"] == 9 and summary["degenerate_pairs"] >= 3
    assert summary["classes_without_channels"] == 1
    assert summary["degenerate_pairs_topk"] < summary["degenerate_pairs"]
    # the summary is the pairs' means, and the share is infidelity over E[Δf²]
    usable = argmax.dropna(subset=["infidelity"])
    assert summary["infidelity_mean"] == pytest.approx(usable["infidelity"].mean())
    assert summary["infidelity_share_mean"] == pytest.approx(
        (usable["infidelity"] / usable["delta_f2"]).mean()
    )
    assert summary == summarise(pairs, scores.channels)


def test_chance_of_a_known_mask():
    model = constructed()
    x, y = (
        torch.rand(4, 1, 64),
        torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32),
    )
    masks = np.zeros((3, 64), bool)
    masks[0, 0:16] = True  # a quarter of the axis
    masks[1, 8:16] = True  # an eighth
    pairs = score_model(model, x, y, masks, "multilabel", RunScoring(n_spectra=4, score=SCORE)).pairs
    first = pairs[pairs["channels"] == "all"]
    np.testing.assert_allclose(first["mask_fraction"], np.where(first["class"] == 0, 0.25, 0.125))
    # a uniform map's mass accuracy is the mask fraction
    uniform = np.ones((2, 64))
    np.testing.assert_allclose(relevance_mass_accuracy(uniform, masks[:2]), [0.25, 0.125])
    # the random map is scored like any map, and near chance on average
    many = np.random.default_rng(0).random((4000, 64))
    assert relevance_mass_accuracy(many, np.repeat(masks[:1], 4000, 0)).mean() == pytest.approx(
        0.25, abs=0.01
    )
    assert first["mass_accuracy_random"].between(0, 1).all()
