"""Outcomes per test spectrum and the paired bootstrap over test spectra, on hand-made cases whose answers
are known, and the Fig. 1 claims that report it beside the seeds' interval."""

import numpy as np
import pandas as pd
import pytest

from peakmixer.metrics import compute_metrics
from peakmixer.studies.claims import claims, verdict_text
from peakmixer.studies.outcomes import metric_of, paired_bootstrap, spectrum_outcomes


def test_the_outcomes_make_the_main_metric_with_its_own_decision_rules():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 5))
    labels = rng.integers(0, 5, 40)
    mc = spectrum_outcomes("multiclass", labels, logits)
    assert mc["correct"].tolist() == (logits.argmax(1) == labels).astype(int).tolist()
    assert metric_of(mc, "multiclass")[0] == pytest.approx(
        compute_metrics("multiclass", labels, logits)["accuracy"]
    )
    multi_hot = rng.random((40, 5)) < 0.3
    ml = spectrum_outcomes("multilabel", multi_hot, logits)
    # a logit of exactly 0 is a probability of 0.5: predicted, as `metrics` decides
    edge = spectrum_outcomes("multilabel", np.array([[True, False]]), np.array([[0.0, 0.0]]))
    assert edge[["tp", "fp", "fn"]].values.tolist() == [[1, 1, 0]]
    want = compute_metrics("multilabel", multi_hot, logits)["micro_f1"]
    assert metric_of(ml, "multilabel")[0] == pytest.approx(want)
    # weights count a spectrum as often as it is drawn: drawing each spectrum twice changes nothing
    assert metric_of(ml, "multilabel", np.full((1, 40), 2.0))[0] == pytest.approx(want)


def outcomes(correct) -> pd.DataFrame:
    return pd.DataFrame({"spectrum": np.arange(len(correct)), "correct": np.asarray(correct, int)})


def test_the_paired_bootstrap_resamples_spectra_and_pairs_the_arms():
    n = 150
    same = outcomes(np.arange(n) % 4 != 0)
    assert paired_bootstrap([same], [same], "multiclass") == (0.0, 0.0, 0.0, n)
    assert paired_bootstrap([outcomes(np.ones(n))], [outcomes(np.zeros(n))], "multiclass")[:3] == (
        1.0,
        1.0,
        1.0,
    )
    # arm a is right on 6 spectra where b is wrong, and both agree elsewhere: the difference is 6 / 150, and
    # its spread over test spectra is that of a count of 6 in 150 draws (sd sqrt(p (1 - p) / n), p = 0.04)
    b = np.arange(n) % 3 == 0
    a = b.copy()
    a[np.flatnonzero(~b)[:6]] = True
    diff, lo, hi, spectra = paired_bootstrap([outcomes(a)], [outcomes(b)], "multiclass", n=4000)
    sd = np.sqrt(0.04 * 0.96 / n)
    assert diff == pytest.approx(0.04) and spectra == n
    assert lo == pytest.approx(0.04 - 1.96 * sd, abs=0.01) and hi == pytest.approx(0.04 + 1.96 * sd, abs=0.01)
    # seeds: each arm's mean over its runs, every run on the same draws
    two = paired_bootstrap([outcomes(a), outcomes(a)], [outcomes(b), outcomes(np.ones(n))], "multiclass")
    assert two[0] == pytest.approx(a.mean() - (b.mean() + 1) / 2)
    with pytest.raises(ValueError, match="different spectra"):
        paired_bootstrap([outcomes(a)], [outcomes(b[:-1])], "multiclass")


def claim_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three seeds of MLPMixer and of no mixer on 150 test spectra: the MLPMixer right on 6 more spectra in
    every seed, so the seeds agree closely while the test spectra say little."""
    n, rows, frames = 150, [], []
    for mixer, extra in (("mlpmixer", 6), ("none", 0)):
        for seed in range(3):
            right = np.arange(n) % 5 < 3  # 90 of 150
            right[np.flatnonzero(~right)[: extra + seed]] = True
            run_id, config_id = f"synth/{mixer}/seed{seed}", f"{mixer}{seed}"
            rows.append(
                {
                    "run_id": run_id,
                    "config_id": config_id,
                    "dataset": "synth",
                    "task": "multiclass",
                    "width": 64,
                    "mixer": mixer,
                    "mixer_layers": 4 if mixer == "mlpmixer" else 0,
                    "seed": seed,
                    "macs": 1e7,
                    "ended_by": "early_stop",
                    "accuracy": right.mean(),
                }
            )
            frames.append(outcomes(right).assign(run_id=run_id, config_id=config_id))
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)


def test_a_claim_gives_the_interval_over_test_spectra_beside_the_seeds_one():
    table, spectra = claim_rows()
    (c,) = claims(table, {"synth": 8}, outcomes=spectra).itertuples(index=False)
    # the seeds agree (sd 1 spectrum), so the Welch interval is narrow and above 0 ...
    assert c.outcome == "supported" and c.ci_low > 0
    # ... while 6 of 150 spectra is within what other test spectra would give
    assert c.spectra == 150 and c.spectra_ci_low < c.difference < c.spectra_ci_high
    assert c.spectra_ci_low < c.ci_low and c.spectra_ci_high > c.ci_high
    assert f"over 150 test spectra [{c.spectra_ci_low:+.4f}, {c.spectra_ci_high:+.4f}]" in verdict_text(
        claims(table, {"synth": 8}, outcomes=spectra)
    )
    # a run without outcomes (made before they were kept): no interval over spectra, and none is made up
    partial = spectra[spectra["run_id"] != "synth/none/seed2"]
    (c,) = claims(table, {"synth": 8}, outcomes=partial).itertuples(index=False)
    assert c.spectra == 0 and np.isnan(c.spectra_ci_low)
    assert "test spectra [" not in verdict_text(claims(table, {"synth": 8}, outcomes=partial))
