"""The interpretable path judged pair by pair, on hand-made pair tables whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from peakmixer.studies.ip_pairs import (
    arms_text,
    chance_table,
    compare_arms,
    compare_subsets,
    fidelity_table,
    ownership_table,
    spectrum_bootstrap,
)

SPECTRA = 20


def pairs_of(
    mode: str,
    seed: int,
    *,
    mass: float,
    share: float,
    channels: str = "specific",
    rule: str = "argmax",
    owned=None,
    noise: float = 0.0,
) -> pd.DataFrame:
    """One pair per test spectrum (class = spectrum % 3) of one run and map, with the given mean scores."""
    rng = np.random.default_rng(seed)
    n = SPECTRA
    owned = np.ones(n, bool) if owned is None else owned
    wobble = rng.normal(0, noise, n) if noise else np.zeros(n)
    nan_unless = lambda v: np.where(owned, v, np.nan)  # noqa: E731
    return pd.DataFrame(
        {
            "run_id": f"d/{mode}/seed{seed}",
            "dataset": "d",
            "ip_mode": mode,
            "seed": seed,
            "pair": np.arange(n),
            "spectrum": np.arange(n),
            "class": np.arange(n) % 3,
            "channels": channels,
            "rule": rule,
            "owned": owned,
            "flat": False,
            "mask_fraction": 0.2,
            "mass_accuracy": nan_unless(mass + wobble),
            "mass_accuracy_random": 0.2,
            "infidelity_share": nan_unless(share + wobble),
            "infidelity": nan_unless(2 * (share + wobble)),
            "delta_f2": 2.0,
            "rho": nan_unless(np.sqrt(1 - np.clip(share + wobble, 0, 1))),
            "infidelity_share_random": 0.95,
            "sensitivity": nan_unless(0.5 + wobble),
        }
    )


def test_the_bootstrap_over_spectra_keeps_a_spectrums_pairs_together():
    mean, lo, hi = spectrum_bootstrap(np.full(30, 0.4), np.arange(30) % 10)
    assert (mean, lo, hi) == (pytest.approx(0.4), pytest.approx(0.4), pytest.approx(0.4))
    # two spectra, each with a constant value: every resample mixes whole spectra, so the mean stays in range
    values = np.r_[np.zeros(5), np.ones(5)]
    mean, lo, hi = spectrum_bootstrap(values, np.r_[np.zeros(5), np.ones(5)], n=4000)
    assert mean == 0.5 and lo == 0.0 and hi == 1.0
    assert np.isnan(spectrum_bootstrap(np.array([np.nan]), np.array([0]))[0])


def test_a_better_arm_on_every_pair_is_supported_and_the_reverse_contradicted():
    pairs = pd.concat(
        [pairs_of("trainable", s, mass=0.5, share=0.3, noise=0.02) for s in (0, 1)]
        + [pairs_of("frozen", s, mass=0.4, share=0.6, noise=0.02) for s in (0, 1)]
    )
    arms = compare_arms(pairs, rules=["argmax"], scores=["infidelity_share", "mass_accuracy"]).set_index(
        "score"
    )
    assert arms.loc["infidelity_share", "difference"] == pytest.approx(-0.3, abs=0.02)
    assert arms.loc["infidelity_share", "outcome"] == "supported"
    assert arms.loc["mass_accuracy", "outcome"] == "supported"
    assert arms.loc["mass_accuracy", "pairs_compared"] == 2 * SPECTRA
    reverse = compare_arms(pairs, "frozen", "trainable", rules=["argmax"], scores=["infidelity_share"])
    assert reverse["outcome"].item() == "contradicted"
    assert "**supported**" in arms_text(arms.reset_index())[0]


def test_beating_the_other_arm_is_not_enough_without_beating_chance():
    pairs = pd.concat(
        [
            pairs_of("trainable", 0, mass=0.19, share=0.3, noise=0.01),
            pairs_of("frozen", 0, mass=0.10, share=0.3),
        ]
    )
    arms = compare_arms(pairs, rules=["argmax"], scores=["mass_accuracy"]).iloc[0]
    assert arms["ci_low"] > 0 and arms["outcome"] == "not resolved" and "random map" in arms["reason"]
    chance = chance_table(pairs).set_index("ip_mode")
    assert (
        chance.loc["trainable", "against_chance"] == "below" and not chance.loc["trainable", "beats_chance"]
    )
    assert chance.loc["trainable", "mask_fraction"] == pytest.approx(0.2)


def test_arms_are_compared_on_the_pairs_scored_in_both_and_the_rest_counted():
    owned = (
        np.arange(SPECTRA) % 3 != 2
    )  # the argmax rule leaves class 2 without channels in the trainable arm
    pairs = pd.concat(
        [
            pairs_of("trainable", 0, mass=0.5, share=0.3, owned=owned),
            pairs_of("frozen", 0, mass=0.4, share=0.6),
        ]
    )
    row = compare_arms(pairs, rules=["argmax"], scores=["infidelity_share"]).iloc[0]
    assert (
        row["pairs_compared"] == owned.sum()
        and row["left_out_a"] == (~owned).sum()
        and row["left_out_b"] == 0
    )
    fid = fidelity_table(pairs, rules=["argmax"]).set_index("ip_mode")
    assert fid.loc["trainable", "left_out"] == (~owned).sum() and fid.loc["trainable", "pairs"] == SPECTRA
    assert fid.loc["trainable", "share_mean"] == pytest.approx(0.3)
    assert fid.loc["trainable", "rho_mean"] == pytest.approx(np.sqrt(0.7))


def test_specific_against_all_channels_within_one_model():
    pairs = pd.concat(
        [
            pairs_of("trainable", 0, mass=0.6, share=0.3, noise=0.01),
            pairs_of("trainable", 0, mass=0.4, share=0.3, channels="all", rule=""),
            pairs_of("trainable", 0, mass=0.6, share=0.3, channels="complement", noise=0.01),
        ]
    )
    sub = compare_subsets(pairs, rules=["argmax"], scores=["mass_accuracy"]).set_index("versus")
    assert sub.loc["all", "outcome"] == "specific clearer"
    assert sub.loc["all", "difference"] == pytest.approx(0.2, abs=0.01)
    assert sub.loc["complement", "outcome"] == "not resolved"


def test_ownership_table_names_the_classes_without_channels_and_counts_their_pairs():
    channels = pd.DataFrame(
        {"run_id": "d/trainable/seed0", "class": [0, 1, 2], "channels_argmax": [5, 4, 0], "channels_topk": 3}
    )
    owned = np.arange(SPECTRA) % 3 != 2
    pairs = pd.concat(
        [
            pairs_of("trainable", 0, mass=0.5, share=0.3, owned=owned),
            pairs_of("trainable", 0, mass=0.5, share=0.3, rule="topk"),
        ]
    )
    rows = pd.DataFrame(
        {"run_id": ["d/trainable/seed0"], "dataset": ["d"], "ip_mode": ["trainable"], "seed": [0]}
    )
    own = ownership_table(channels, pairs, rows).iloc[0]
    assert own["without_channels_argmax"] == 1 and own["classes_without"] == "2"  # no names: class indices
    assert (own["fewest"], own["most"], own["channels"]) == (0, 5, 9)
    assert own["pairs_left_out_argmax"] == (~owned).sum() and own["pairs_left_out_topk"] == 0
