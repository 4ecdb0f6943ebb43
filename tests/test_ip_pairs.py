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
    path_verdict_text,
    spectrum_bootstrap,
    subsets_text,
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
    assert sub.loc["all", "left_out"] == 0 and sub.loc["all", "seeds"] == 1
    lines = subsets_text(sub.reset_index())
    assert len(lines) == 2 and all("one seed, no spread over seeds" in line for line in lines)


def test_specific_against_all_counts_the_pairs_the_specific_map_leaves_out():
    owned = np.arange(SPECTRA) % 3 != 2  # class 2 owns no channel: its specific map is not scored
    pairs = pd.concat(
        [pairs_of("trainable", s, mass=0.6, share=0.3, owned=owned, noise=0.01) for s in (0, 1)]
        + [pairs_of("trainable", s, mass=0.4, share=0.3, channels="all", rule="") for s in (0, 1)]
    )
    sub = compare_subsets(pairs, rules=["argmax"], scores=["mass_accuracy"]).set_index("versus")
    row = sub.loc["all"]
    assert row["pairs_compared"] == 2 * owned.sum() and row["left_out"] == 2 * (~owned).sum()
    assert row["seeds"] == 2 and np.isfinite(row["sd_over_seeds"])


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


def test_ownership_counts_flat_maps_as_left_out_beside_unowned_classes():
    channels = pd.DataFrame(
        {"run_id": "d/trainable/seed0", "class": [0, 1, 2], "channels_argmax": [5, 4, 0], "channels_topk": 3}
    )
    owned = np.arange(SPECTRA) % 3 != 2
    argmax = pairs_of("trainable", 0, mass=0.5, share=0.3, owned=owned)
    topk = pairs_of("trainable", 0, mass=0.5, share=0.3, rule="topk")
    # spectra 0 and 3 (class 0, owned) have flat maps under both rules; spectrum 2 (class 2) is unowned and
    # flat too, and counts once, as unowned
    for frame in (argmax, topk):
        frame.loc[frame["spectrum"].isin([0, 3, 2]), "flat"] = True
    rows = pd.DataFrame(
        {"run_id": ["d/trainable/seed0"], "dataset": ["d"], "ip_mode": ["trainable"], "seed": [0]}
    )
    own = ownership_table(channels, pd.concat([argmax, topk]), rows).iloc[0]
    assert own["pairs_unowned_argmax"] == (~owned).sum() and own["pairs_flat_argmax"] == 2
    assert own["pairs_left_out_argmax"] == (~owned).sum() + 2
    assert (own["pairs_unowned_topk"], own["pairs_flat_topk"], own["pairs_left_out_topk"]) == (0, 3, 3)
    fid = fidelity_table(pd.concat([argmax, topk]), rules=["argmax", "topk"]).set_index("rule")
    # the fidelity table and the ownership table count the same pairs as left out
    assert fid.loc["argmax", "left_out"] == own["pairs_left_out_argmax"]
    assert fid.loc["topk", "left_out"] == own["pairs_left_out_topk"]


def test_the_verdict_judges_fidelity_by_the_share_and_counts_each_other_arm():
    # trainable: a lower share (a better map) but a higher captum infidelity (a model that moves more):
    # the verdict reads the share
    trainable = pairs_of("trainable", 0, mass=0.5, share=0.3, noise=0.02).assign(infidelity=5.0)
    pairs = pd.concat(
        [trainable, pairs_of("frozen", 0, mass=0.5, share=0.6, noise=0.02).assign(infidelity=1.0)]
        + [pairs_of("redrawn", 0, mass=0.5, share=0.3, noise=0.02).assign(infidelity=1.0)]
    )
    arms = pd.concat(
        [compare_arms(pairs, "trainable", b, rules=["argmax"]) for b in ("frozen", "redrawn")],
        ignore_index=True,
    )
    assert set(arms["score"]) >= {"infidelity", "infidelity_share"}
    text = path_verdict_text(arms, synthetic=["d"])
    assert text.startswith("On SYNTHETIC data (d).")
    share = next(line for line in text.splitlines() if line.startswith("d, argmax, infidelity_share"))
    assert "vs frozen" in share and share.endswith("**supported**.")
    assert "infidelity (lower" not in text  # captum's raw value is Table 1's column, not the verdict's
    frozen = next(line for line in text.splitlines() if line.startswith("Tally against frozen"))
    # share, sensitivity and mass accuracy; the mass is level (and at chance): not resolved
    assert "supported 1" in frozen and frozen.endswith("(of 3).")
    assert "Tally against redrawn" in text
    assert path_verdict_text(arms.iloc[0:0]).startswith("No trainable run")
