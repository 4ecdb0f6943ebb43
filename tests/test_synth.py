"""The synthetic benchmarks: determinism, layout, label statistics, ground-truth masks, difficulty."""

import argparse

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from peakmixer.data.dataset import file_sha256, load, named_axis
from peakmixer.synth import bac30, benchmarks, ir17, render

# Ho et al.'s classes and treatment groups, transcribed independently from csho33/bacteria-ID config.py
# (STRAINS, ATCC_GROUPINGS) so that a slip in benchmarks.py's table shows up here.
HO_STRAINS = [
    "C. albicans",
    "C. glabrata",
    "K. aerogenes",
    "E. coli 1",
    "E. coli 2",
    "E. faecium",
    "E. faecalis 1",
    "E. faecalis 2",
    "E. cloacae",
    "K. pneumoniae 1",
    "K. pneumoniae 2",
    "P. mirabilis",
    "P. aeruginosa 1",
    "P. aeruginosa 2",
    "MSSA 1",
    "MSSA 3",
    "MRSA 1 (isogenic)",
    "MRSA 2",
    "MSSA 2",
    "S. enterica",
    "S. epidermidis",
    "S. lugdunensis",
    "S. marcescens",
    "S. pneumoniae 2",
    "S. pneumoniae 1",
    "S. sanguinis",
    "Group A Strep.",
    "Group B Strep.",
    "Group C Strep.",
    "Group G Strep.",
]
HO_GROUPING = {
    3: 0,
    4: 0,
    9: 0,
    10: 0,
    2: 0,
    8: 0,
    11: 0,
    22: 0,
    12: 2,
    13: 2,
    14: 3,
    18: 3,
    15: 3,
    20: 3,
    21: 3,
    16: 3,
    17: 3,
    23: 4,
    24: 4,
    26: 5,
    27: 5,
    28: 5,
    29: 5,
    25: 5,
    6: 5,
    7: 5,
    5: 6,
    19: 1,
    0: 7,
    1: 7,
}
# Group 0 of ATCC_GROUPINGS is the carbapenem group, 7 the antifungal one (RamanSPy's per-class antibiotics).
HO_GROUP_NAMES = [
    "Meropenem",
    "Ciprofloxacin",
    "TZP",
    "Vancomycin",
    "Ceftriaxone",
    "Penicillin",
    "Daptomycin",
    "Caspofungin",
]
NIST_IR_ORDER = [
    "alkane",
    "methyl",
    "alkene",
    "alkyne",
    "alcohols",
    "amines",
    "nitriles",
    "aromatics",
    "alkyl halides",
    "esters",
    "ketones",
    "aldehydes",
    "carboxylic acids",
    "ether",
    "acyl halides",
    "amides",
    "nitro",
]
N_BAC_SMALL = 30 * 12  # the smallest bac30 with the default 5 finetune + 5 test spectra per class


@pytest.fixture(scope="module")
def ir_parts():
    return benchmarks.render_components("synth-ir17", 300, 3)


@pytest.fixture(scope="module")
def bac_parts():
    return benchmarks.render_components("synth-bac30", N_BAC_SMALL, 3)


@pytest.mark.parametrize("kind,n", [("synth-ir17", 200), ("synth-bac30", N_BAC_SMALL)])
def test_files_are_byte_identical_for_same_arguments_and_differ_across_seeds(tmp_path, kind, n):
    a = benchmarks.make_synth(kind, n, 7).save(tmp_path / "a.pmds")
    b = benchmarks.make_synth(kind, n, 7).save(tmp_path / "b.pmds")
    c = benchmarks.make_synth(kind, n, 8).save(tmp_path / "c.pmds")
    assert file_sha256(a) == file_sha256(b)
    assert file_sha256(a) != file_sha256(c)


def test_spectra_do_not_depend_on_the_number_of_noise_threads(monkeypatch):
    many = benchmarks.make_synth_ir17(5000, 2).X  # several noise blocks
    monkeypatch.setattr(render.os, "cpu_count", lambda: 1)
    assert np.array_equal(benchmarks.make_synth_ir17(5000, 2).X, many)


def test_ir17_layout_axis_labels_splits_and_provenance():
    ds = benchmarks.make_synth_ir17(500, 0, noise=0.03)
    assert ds.X.shape == (500, 1024) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.axis, named_axis("ir"))
    assert ds.task == "multilabel" and ds.label_names == NIST_IR_ORDER
    assert ds.masks.shape == (17, 1024)
    assert 0.0 <= ds.X.min() and ds.X.max() <= 1.0  # min-max scaled
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 400, "val": 50, "test": 50}
    assert np.array_equal(np.sort(np.concatenate(list(ds.splits.values()))), np.arange(500))
    prov = ds.provenance
    assert prov["synthetic"] is True and prov["kind"] == "synth-ir17"
    assert prov["n"] == 500 and prov["seed"] == 0
    assert prov["generator_version"] == render.GENERATOR_VERSION and prov["knobs"]["noise"] == 0.03


def test_ir17_label_statistics_follow_nist_ir():
    y = benchmarks.make_synth_ir17(4000, 1).y.astype(bool)
    share = y.sum(0) / y.sum()
    target = np.array(ir17.IR17_LABEL_SHARES)
    assert np.all(np.abs(share - target) <= 0.15 * target + 0.004), np.round(share, 3)
    counts = y.sum(1)
    assert counts.min() >= 1 and counts.max() <= 6
    assert np.bincount(counts).argmax() == 3 and 3.0 < counts.mean() < 3.6
    # The SMARTS overlaps of the real labels: the implied group fires whenever the implying one does.
    for a, b in [("esters", "ether"), ("carboxylic acids", "alcohols"), ("acyl halides", "alkyl halides")]:
        ia, ib = NIST_IR_ORDER.index(a), NIST_IR_ORDER.index(b)
        assert y[:, ia].any() and np.all(y[y[:, ia], ib])
    # Co-occurrence, not independence: CH2 chains come with methyl ends.
    assert np.corrcoef(y[:, 0], y[:, 1])[0, 1] > 0.1


def test_render_components_reproduces_the_dataset_spectra(ir_parts, bac_parts):
    ir = benchmarks.make_synth_ir17(300, 3)
    assert np.array_equal(ir_parts.labels, ir.y) and np.array_equal(ir_parts.X, ir.X)
    bac = bac30.make_synth_bac30(N_BAC_SMALL, 3)
    assert np.array_equal(bac_parts.labels, bac.y) and np.array_equal(bac_parts.X, bac.X)
    assert ir_parts.components.shape == (300, 17, 1024)
    assert bac_parts.components.shape == (N_BAC_SMALL, 30, 1000)


def _mask_energy_fraction(components: np.ndarray, masks: np.ndarray) -> np.ndarray:
    energy = (components.astype(np.float64) ** 2).sum(-1)
    inside = (components.astype(np.float64) ** 2 * masks[None]).sum(-1)
    return inside / np.where(energy > 0, energy, 1.0)


def test_ir17_masks_hold_present_groups_and_absent_groups_are_zero(ir_parts):
    masks = ir17.ir17_masks(named_axis("ir"))
    present = ir_parts.labels.astype(bool)
    energy = (ir_parts.components.astype(np.float64) ** 2).sum(-1)
    assert np.all(energy[present] > 0) and np.all(ir_parts.components[~present] == 0)
    assert _mask_energy_fraction(ir_parts.components, masks)[present].min() >= 0.95
    # Masks point somewhere: each covers some, never most, of the axis.
    assert np.all(masks.any(1)) and masks.mean(1).max() < 0.6


def test_bac30_masks_hold_the_true_class_signature_and_other_classes_are_zero(bac_parts):
    masks = bac30.bac30_masks(named_axis("ho"))
    onehot = np.eye(30, dtype=bool)[bac_parts.labels]
    assert np.all(bac_parts.components[~onehot] == 0)
    assert np.all((bac_parts.components[onehot] ** 2).sum(-1) > 0)
    assert _mask_energy_fraction(bac_parts.components, masks)[onehot].min() >= 0.95
    assert np.all(masks.any(1)) and masks.mean(1).max() < 0.6
    # No two classes share every signature band: each mask differs from all others.
    assert len({m.tobytes() for m in masks}) == 30


def test_components_are_the_whole_label_dependent_signal():
    # ir17 without noise, baseline, skeleton bands or scaling: the spectrum is exactly its groups' bands.
    quiet = dict(noise=0.0, baseline=0.0, n_nuisance=0.0, normalize=False)
    parts = benchmarks.render_components("synth-ir17", 50, 0, **quiet)
    np.testing.assert_allclose(parts.X, parts.components.sum(1), atol=1e-5)
    # Min-max scaling scales the components with the spectrum and leaves only a per-row offset.
    parts = benchmarks.render_components("synth-ir17", 50, 0, **(quiet | {"normalize": True}))
    rest = parts.X - parts.components.sum(1)
    np.testing.assert_allclose(rest, np.broadcast_to(rest[:, :1], rest.shape), atol=1e-5)
    # bac30 without per-spectrum variation: removing the class signature leaves the same consensus cell in
    # every spectrum of a measurement day, whatever its class; the two days differ.
    still = dict(
        family_spread=0.0,
        band_spread=0.0,
        jitter_cm=0.0,
        background=0.0,
        noise=0.0,
        n_nuisance=0.0,
        normalize=False,
    )
    parts = benchmarks.render_components("synth-bac30", N_BAC_SMALL, 0, **still)
    splits = bac30.make_synth_bac30(N_BAC_SMALL, 0, **still).splits
    rest = parts.X - parts.components.sum(1)
    days = [rest[splits["reference"]], rest[np.concatenate([splits["finetune"], splits["test"]])]]
    for day in days:
        assert len(day) >= 30
        np.testing.assert_allclose(day, np.broadcast_to(day[0], day.shape), atol=1e-5)
    assert np.abs(days[0][0] - days[1][0]).max() > 0.05


def test_bac30_classes_groups_and_provenance_are_ho_et_al():
    ds = bac30.make_synth_bac30(N_BAC_SMALL, 0)
    assert ds.label_names == HO_STRAINS and ds.task == "multiclass"
    assert ds.X.shape == (N_BAC_SMALL, 1000)
    np.testing.assert_array_equal(ds.axis, named_axis("ho"))
    assert ds.extras["y_group"].dtype == np.int64
    np.testing.assert_array_equal(ds.extras["y_group"], [HO_GROUPING[c] for c in ds.y])
    assert ds.provenance["y_group_names"] == HO_GROUP_NAMES and ds.provenance["synthetic"] is True
    assert ds.provenance["class_to_group"] == [HO_GROUPING[c] for c in range(30)]


def test_bac30_splits_follow_ho_proportions_and_are_disjoint():
    ds = bac30.make_synth_bac30(6600, 0)  # 220 per class = Ho's 2200 per class at 1/10 scale
    parts = [ds.splits[k] for k in ("reference", "val", "finetune", "test")]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(6600))  # disjoint and complete
    per_class = {k: np.bincount(ds.y[v], minlength=30) for k, v in ds.splits.items()}
    assert np.all(per_class["finetune"] == 10) and np.all(per_class["test"] == 10)
    assert np.all(per_class["val"] == 20) and np.all(per_class["reference"] == 180)
    small = bac30.make_synth_bac30(N_BAC_SMALL, 0)
    assert all(np.all(np.bincount(small.y[small.splits[k]], minlength=30) >= 5) for k in ("finetune", "test"))
    with pytest.raises(ValueError, match="per class"):
        bac30.make_synth_bac30(N_BAC_SMALL - 1, 0)


def test_bac30_is_learnable_but_not_trivial_and_the_other_day_is_shifted():
    ds = bac30.make_synth_bac30(3300, 0)

    def features(name):  # 4-point bins keep the fit fast; standardised, the background does not dominate
        part = ds.split(name)
        return part.X.reshape(len(part), -1, 4).mean(-1), part.y

    (Xr, yr), (Xv, yv), (Xt, yt) = features("reference"), features("val"), features("test")
    scaler = StandardScaler().fit(Xr)
    model = LogisticRegression(max_iter=200, C=0.1).fit(scaler.transform(Xr), yr)
    acc_val, acc_test = model.score(scaler.transform(Xv), yv), model.score(scaler.transform(Xt), yt)
    assert 0.2 < acc_val < 0.95, acc_val  # chance is 1/30
    # The finetune/test day is measured differently: a reference-trained model loses accuracy there.
    assert acc_test < acc_val - 0.05, (acc_val, acc_test)
    # And with the signatures switched off the classes are indistinguishable.
    centre, fwhm, family, weights = bac30.bac30_signatures(bac30.Bac30Knobs(separation=0.0))
    assert not weights[1:].any() and weights[0].any()


def test_cli_writes_a_loadable_dataset_with_knobs(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    benchmarks.add_synth_arguments(parser)
    out = tmp_path / "d.pmds"
    args = parser.parse_args(
        [
            "--kind",
            "synth-bac30",
            "--n",
            str(N_BAC_SMALL),
            "--seed",
            "4",
            "--out",
            str(out),
            "--knob",
            "noise=0.05",
            "--knob",
            "normalize=false",
            "--knob",
            "min_shifted_per_class=4",
        ]
    )
    assert benchmarks.run_synth(args) == out and "synth-bac30" in capsys.readouterr().out
    ds = load(out)
    assert ds.provenance["knobs"]["noise"] == 0.05 and ds.provenance["knobs"]["normalize"] is False
    assert ds.provenance["seed"] == 4 and ds.masks.shape == (30, 1000)
    assert ds.X.max() > 1.0  # not min-max scaled
    with pytest.raises(ValueError, match="NAME=VALUE"):
        benchmarks.parse_knobs("synth-ir17", ["loudness=3"])
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        benchmarks.make_synth("synth-ir18", 10, 0)
    with pytest.raises(TypeError):
        benchmarks.make_synth_ir17(10, 0, shift_cm=2.0)  # a bac30 knob
