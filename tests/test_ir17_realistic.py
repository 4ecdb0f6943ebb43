"""synth-ir17 versions 3 to 9: the realistic generator, its normal modes and molecule pool."""

import sys

import numpy as np
import pytest

from peakmixer.config import ConfigError
from peakmixer.data.dataset import named_axis
from peakmixer.data.labels import NIST17_NAMES, compile_smarts, functional_groups, parse_smiles
from peakmixer.synth import benchmarks
from peakmixer.synth.ir17_realistic import PRESETS, IR17V3Knobs, knobs_for, molecule_pool, render_ir17_v3
from peakmixer.synth.normalmodes import molecule_modes, nci_modes, table_digest

IR = {name: k for k, name in enumerate(NIST17_NAMES)}
(CF,) = compile_smarts(["[#6]F"])


@pytest.fixture(scope="module")
def v3_parts():
    return benchmarks.render_components("synth-ir17", 200, 5, "3")


def test_each_version_is_reproducible_and_version_2_is_unchanged(tmp_path):
    a = benchmarks.make_synth("synth-ir17", 150, 3, "3")
    b = benchmarks.make_synth("synth-ir17", 150, 3, "3")
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, benchmarks.make_synth("synth-ir17", 150, 4, "3").X)
    v2 = benchmarks.make_synth("synth-ir17", 150, 3)
    assert np.array_equal(v2.X, benchmarks.make_synth_ir17(150, 3).X) and not np.array_equal(v2.X, a.X)
    assert a.provenance["generator_version"] == "3" and v2.provenance["generator_version"] == "2"
    path = benchmarks.ensure_synth("synth-ir17", 150, 3, tmp_path, "3")
    assert path.name == "synth-ir17_v3_n150_s3.npz"
    with pytest.raises(ConfigError, match="no generator version '10'"):
        benchmarks.make_synth("synth-ir17", 10, 0, "10")
    with pytest.raises(ConfigError, match="synth-bac30 has no generator version '3'"):
        benchmarks.ensure_synth("synth-bac30", 10, 0, tmp_path, "3")


def test_label_sets_are_those_of_real_molecules(v3_parts):
    pool = molecule_pool()
    # Every spectrum's labels are its molecule's SMARTS matches: recomputed here from the SMILES it carries.
    ds = benchmarks.make_synth("synth-ir17", 200, 5, "3")
    assert np.array_equal(functional_groups(list(ds.extras["smiles"])), ds.y)
    assert np.array_equal(ds.y, v3_parts.labels)
    # Co-occurrence is chemistry, not independent coin flips: an ester is always an ether by the SMARTS;
    # methyl esters make methyl and esters go together, and amines rarely sit beside esters.
    y = pool.labels.astype(bool)
    assert y[y[:, IR["esters"]], IR["ether"]].all()

    def lift(a: str, b: str) -> float:
        return (y[:, IR[a]] & y[:, IR[b]]).mean() / (y[:, IR[a]].mean() * y[:, IR[b]].mean())

    assert lift("methyl", "esters") > 1.3 and lift("amines", "esters") < 0.5
    big = benchmarks.make_synth("synth-ir17", 3000, 0, "3").y.mean(0)
    assert np.allclose(big, pool.labels.mean(0), atol=0.03)


def _group_energy(parts: benchmarks.SynthParts, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per present (spectrum, group): its component's energy, and the part of it inside the group's mask."""
    present = parts.labels.astype(bool)
    comp = parts.components.astype(np.float64)
    return (comp**2).sum(-1)[present], (comp**2 * masks[None]).sum(-1)[present]


@pytest.mark.parametrize("version", ["3", "4", "5"])
def test_masks_hold_each_present_group_and_absent_groups_are_zero(version, v3_parts):
    parts = v3_parts if version == "3" else benchmarks.render_components("synth-ir17", 200, 5, version)
    masks = benchmarks.make_synth("synth-ir17", 10, 5, version).masks
    energy, inside = _group_energy(parts, masks)
    assert np.all(energy > 0) and np.all(parts.components[~parts.labels.astype(bool)] == 0)
    assert (inside / energy).min() >= 0.95


def test_version_4_is_version_3_with_its_wider_preset():
    assert knobs_for("3") == IR17V3Knobs() and knobs_for("4") == IR17V3Knobs(**PRESETS["4"])
    assert knobs_for("4", p_gas=1.0).band_jitter == PRESETS["4"]["band_jitter"]
    v4 = benchmarks.make_synth("synth-ir17", 120, 2, "4")
    same = benchmarks.make_synth("synth-ir17", 120, 2, "3", **PRESETS["4"])
    assert np.array_equal(v4.X, same.X) and np.array_equal(v4.masks, same.masks)
    v3 = benchmarks.make_synth("synth-ir17", 120, 2, "3")
    assert np.array_equal(v3.y, v4.y) and not np.array_equal(v3.X, v4.X)  # same molecules, other spectra
    assert v4.provenance["generator_version"] == "4" and v4.provenance["knobs"]["band_jitter"] > 0
    assert v4.masks.sum() > v3.masks.sum()  # the per-band frequency error widens every band's window
    # Wider: the heights of the present groups' strongest points vary more across spectra and groups.
    parts3 = benchmarks.render_components("synth-ir17", 300, 3, "3")
    parts4 = benchmarks.render_components("synth-ir17", 300, 3, "4")

    def spread(parts) -> float:
        peak = parts.components.max(-1)  # (N, K): each group's strongest point
        heights = peak[parts.labels == 1]
        return float(np.std(np.log(heights[heights > 0])))

    assert spread(parts4) > spread(parts3)


def test_version_5_adds_label_free_small_molecules_and_volatile_gases():
    pool = molecule_pool()
    heavy = dict(zip(pool.smiles, pool.heavy_atoms, strict=True))
    v5 = benchmarks.make_synth("synth-ir17", 2000, 1, "5")
    free = v5.extras["smiles"] == ""
    # About one spectrum in ten is of a molecule with none of the 17 groups: no label, no molecule named.
    assert 0.07 < free.mean() < 0.13 and not v5.y[free].any() and v5.y[~free].any(axis=1).mean() > 0.95
    # It still has bands: most of each spectrum lies near its baseline (a flat noisy line, min-max scaled,
    # would have its median near 0.5), and its strongest points are few.
    assert np.median(np.median(v5.X[free], axis=1)) < 0.2 and np.median((v5.X[free] > 0.5).sum(1)) < 40
    # Every gas-phase spectrum is of a volatile molecule: with every spectrum a gas, no molecule is large.
    gas = benchmarks.make_synth("synth-ir17", 300, 1, "5", p_gas=1.0, p_label_free=0.0)
    assert max(heavy[s] for s in gas.extras["smiles"]) <= PRESETS["5"]["gas_max_atoms"]
    assert np.median([heavy[s] for s in v5.extras["smiles"][~free]]) < np.median(pool.heavy_atoms)
    # With its two knobs off, version 5 is version 4, and a recipe names them only where they are on.
    off = benchmarks.make_synth("synth-ir17", 120, 2, "5", gas_max_atoms=0, p_label_free=0.0)
    v4 = benchmarks.make_synth("synth-ir17", 120, 2, "4")
    assert np.array_equal(off.X, v4.X) and off.provenance["knobs"] == v4.provenance["knobs"]
    assert "p_label_free" not in v4.provenance["knobs"] and v5.provenance["knobs"]["p_label_free"] == 0.1


def test_version_5_knobs_that_cannot_be_drawn_are_named():
    with pytest.raises(ConfigError, match="gas_max_atoms must be a whole number"):
        knobs_for("5", gas_max_atoms=-1)
    with pytest.raises(ConfigError, match="p_label_free must be a share"):
        knobs_for("5", p_label_free=1.5)
    with pytest.raises(ConfigError, match="gas_max_atoms=1: no molecule of the pool is that small"):
        render_ir17_v3(10, 0, knobs_for("5", gas_max_atoms=1))
    # 10.0 (from YAML or Python) names the same data as 10.
    assert knobs_for("5", gas_max_atoms=10.0).record() == knobs_for("5").record()


def test_the_shipped_normal_modes_are_what_the_force_field_gives_and_their_chemistry_holds():
    table = nci_modes()
    pool = molecule_pool()
    assert set(table.smiles) == set(pool.smiles)  # every molecule the generator can draw was treated
    treated = table.offsets[1:] > table.offsets[:-1]
    assert treated.mean() > 0.95  # a few have no MMFF94 parameters (e.g. some metal salts)
    # A mode belongs only to groups its molecule has (MMFF's own aromaticity must not relabel a molecule).
    labels = dict(zip(pool.smiles, pool.labels, strict=True))
    weights = 1 << np.arange(len(NIST17_NAMES))
    for m in np.flatnonzero(treated):
        has = int(labels[str(table.smiles[m])] @ weights)
        assert not int(np.bitwise_or.reduce(table.of(int(m))[2])) & ~has, table.smiles[m]
    for m in np.flatnonzero(treated)[[0, 1, -1]]:  # recomputed here: the resource is this code's output
        wn, intensity, bits = molecule_modes(str(table.smiles[m]))
        shipped_wn, shipped_intensity, shipped_bits = table.of(int(m))
        # Each clear mode again (a minimiser's last digits may differ between CPUs: a mode at a cut-off may
        # come and go), at its wavenumber, intensity (stored as float16) and groups.
        for w, i, b in zip(shipped_wn, shipped_intensity, shipped_bits, strict=True):
            if i < 0.01 or w < 400:
                continue
            near = np.abs(wn - w).argmin()
            assert abs(wn[near] - w) < 1.0 and abs(intensity[near] - i) < 0.01 + 0.02 * i and bits[near] == b
    # Textbook fundamentals (gas phase, cm-1), each the strongest mode in its window and its group's:
    # acetone C=O 1738, ethanol O-H 3681, acetonitrile C#N 2267; MMFF94 within about 5%.
    for smiles, group, lo, hi, measured in [
        ("CC(C)=O", "ketones", 1600, 1900, 1738),
        ("CCO", "alcohols", 3400, 3900, 3681),
        ("CC#N", "nitriles", 2000, 2400, 2267),
    ]:
        wn, intensity, bits = molecule_modes(smiles)
        window = (wn > lo) & (wn < hi)
        top = np.flatnonzero(window)[intensity[window].argmax()]
        assert abs(wn[top] / measured - 1) < 0.05 and bits[top] >> IR[group] & 1
    assert molecule_modes("not a molecule") is None


def test_version_6_draws_half_its_molecules_from_their_normal_modes_and_masks_hold_them():
    v6 = benchmarks.render_components("synth-ir17", 300, 5, "6")
    physics = benchmarks.render_components("synth-ir17", 300, 5, "6", p_physics=1.0)
    masks = benchmarks.make_synth("synth-ir17", 10, 5, "6").masks
    # The same molecules (labels) and the same draws where the share does not decide.
    assert np.array_equal(v6.labels, physics.labels) and not np.array_equal(v6.X, physics.X)
    for parts in (v6, physics):
        energy, inside = _group_energy(parts, masks)
        assert np.all(parts.components[~parts.labels.astype(bool)] == 0)
        shown = energy > 0
        # A normal-mode spectrum shows a group only where one of the group's modes falls in its window
        # (a C-Cl stretch mixed into the skeleton does not), so not every present group has a component.
        assert shown.mean() > (0.97 if parts is v6 else 0.75)
        assert (inside[shown] / energy[shown]).min() >= 0.95
    # With the share off, version 6 is version 5; a recipe names the knob only where it is on.
    off = benchmarks.make_synth("synth-ir17", 120, 2, "6", p_physics=0.0)
    v5 = benchmarks.make_synth("synth-ir17", 120, 2, "5")
    assert np.array_equal(off.X, v5.X) and off.provenance["knobs"] == v5.provenance["knobs"]
    knobs = benchmarks.make_synth("synth-ir17", 120, 2, "6").provenance["knobs"]
    # The mode table is part of the recipe: a rebuilt table names other data.
    assert knobs["p_physics"] == 0.5 and knobs["mode_table"] == table_digest()
    with pytest.raises(ConfigError, match="p_physics must be a share"):
        knobs_for("6", p_physics=2.0)


def test_version_7_saturates_strong_bands_and_brightens_normal_mode_c_h_stretches():
    # With both knobs off, version 7 is version 6: same spectra, same recipe.
    off = benchmarks.make_synth("synth-ir17", 150, 2, "7", p_saturated=0.0, ch_stretch_max=1.0)
    v6 = benchmarks.make_synth("synth-ir17", 150, 2, "6")
    assert np.array_equal(off.X, v6.X) and off.provenance["knobs"] == v6.provenance["knobs"]
    assert benchmarks.make_synth("synth-ir17", 10, 2, "7").provenance["knobs"]["p_saturated"] == 0.3

    # Saturation alone, on every spectrum: the same molecules, flat tops, weak bands gaining on strong ones;
    # the components (where a group's bands lie) still sit inside the masks.
    linear = benchmarks.render_components("synth-ir17", 200, 4, "7", p_saturated=0.0, ch_stretch_max=1.0)
    flat = benchmarks.render_components("synth-ir17", 200, 4, "7", p_saturated=1.0, ch_stretch_max=1.0)
    assert np.array_equal(linear.labels, flat.labels)
    for level, gain in ((0.8, 1.3), (0.5, 1.2)):  # broader tops; bands at half the top: more of them
        assert (flat.X >= level).sum(1).mean() > gain * (linear.X >= level).sum(1).mean()
    masks = benchmarks.make_synth("synth-ir17", 10, 4, "7").masks
    energy, inside = _group_energy(flat, masks)
    shown = energy > 0
    assert shown.mean() > 0.97 and (inside[shown] / energy[shown]).min() >= 0.95

    # Normal-mode spectra of hydrocarbon-bearing molecules: a larger share of their area in the C-H stretches.
    def ch_share(ch_max: float) -> float:
        ds = benchmarks.make_synth(
            "synth-ir17", 300, 6, "7", p_physics=1.0, p_saturated=0.0, ch_stretch_max=ch_max
        )
        ax, X = ds.axis, ds.X - ds.X.min(axis=1, keepdims=True)
        alkyl = ds.y[:, IR["alkane"]] | ds.y[:, IR["methyl"]] == 1
        return float(np.median(X[alkyl][:, (ax > 2700) & (ax < 3150)].sum(1) / X[alkyl].sum(1)))

    assert ch_share(6.25) > 1.3 * ch_share(1.0)
    with pytest.raises(ConfigError, match="ch_stretch_max must be >= 1"):
        knobs_for("7", ch_stretch_max=0.5)
    with pytest.raises(ConfigError, match="p_saturated must be a share"):
        knobs_for("7", p_saturated=-0.1)


def test_version_8_draws_the_bands_that_each_molecule_carries():
    off = benchmarks.make_synth("synth-ir17", 150, 2, "8", band_chemistry=False)
    v7 = benchmarks.make_synth("synth-ir17", 150, 2, "7")
    assert np.array_equal(off.X, v7.X) and off.provenance["knobs"] == v7.provenance["knobs"]

    # Band-table spectra only: every alcohol shows its O-H stretch (free in the gas, H-bonded otherwise);
    # a halide shows the C-X stretch of its own halogen.
    y, _, comp, mol = render_ir17_v3(800, 3, knobs_for("8", p_physics=0.0), with_components=True)
    axis = named_axis("ir")
    alcohol = y[:, IR["alcohols"]] == 1
    assert alcohol.sum() > 50 and (comp[alcohol, IR["alcohols"]][:, axis > 3150].max(1) > 0).all()
    fluorine = np.array([parse_smiles(molecule_pool().smiles[m]).HasSubstructMatch(CF) for m in mol])
    halide = comp[:, IR["alkyl halides"]].astype(np.float64) ** 2
    above = halide[:, axis > 1000].sum(1) / np.maximum(halide.sum(1), 1e-30)
    is_halide = y[:, IR["alkyl halides"]] == 1
    assert (is_halide & fluorine).sum() > 5 and (is_halide & ~fluorine).sum() > 20
    assert (above[is_halide & fluorine] > 0.05).all() and (above[is_halide & ~fluorine] < 0.05).all()
    assert benchmarks.make_synth("synth-ir17", 10, 2, "8").provenance["knobs"]["band_chemistry"] is True


def test_version_9_renders_half_the_normal_mode_spectra_as_a_classical_md_run(monkeypatch):
    import peakmixer.synth.ir17_lines as ir17_lines

    off = benchmarks.make_synth("synth-ir17", 150, 2, "9", p_md=0.0)
    v8 = benchmarks.make_synth("synth-ir17", 150, 2, "8")
    assert np.array_equal(off.X, v8.X) and off.provenance["knobs"] == v8.provenance["knobs"]
    assert benchmarks.make_synth("synth-ir17", 10, 2, "9").provenance["knobs"]["p_md"] == 0.5
    with pytest.raises(ConfigError, match="p_md must be a share"):
        knobs_for("9", p_md=1.5)

    # Normal-mode spectra only, all of them as MD runs: the same molecules as without, fixed-charge C-H
    # stretches weaker than the flux of version 6 (and wavenumber-weighted intensities), components in the
    # masks. Without baseline, additive noise, atmosphere, cut-off or saturation: the lines alone.
    quiet = {"p_physics": 1.0, "p_saturated": 0.0, "ch_stretch_max": 1.0, "noise_min": 1e-9,
             "noise_max": 1e-9, "baseline_max": 1e-9, "p_atmosphere": 0.0, "p_cutoff": 0.0}  # fmt: skip
    md = benchmarks.render_components("synth-ir17", 300, 6, "9", p_md=1.0, **quiet)
    normal = benchmarks.render_components("synth-ir17", 300, 6, "9", p_md=0.0, **quiet)
    assert np.array_equal(md.labels, normal.labels)
    axis = named_axis("ir")
    alkyl = (md.labels[:, IR["alkane"]] | md.labels[:, IR["methyl"]]) == 1
    ch = (axis > 2700) & (axis < 3150)

    def ch_share(X: np.ndarray) -> float:
        return float(np.median(X[alkyl][:, ch].sum(1) / X[alkyl].sum(1)))

    assert alkyl.sum() > 100 and ch_share(md.X) < 0.7 * ch_share(normal.X)
    energy, inside = _group_energy(md, benchmarks.make_synth("synth-ir17", 10, 6, "9").masks)
    shown = energy > 0
    assert shown.mean() > 0.75 and (inside[shown] / energy[shown]).min() >= 0.95

    # The trajectory's estimate error is proportional to the spectrum: where there is no line there is no
    # noise, and on the lines the log ratio to the same rendering without it has an sd in the drawn range.
    monkeypatch.setattr(ir17_lines, "_MD_NOISE_SD", (1e-9, 1e-9))  # the same draws, a factor of 1
    clean = benchmarks.render_components("synth-ir17", 300, 6, "9", p_md=1.0, **quiet)
    assert np.array_equal(clean.labels, md.labels)
    empty, strong = clean.X < 1e-4, clean.X > 0.05
    assert empty.mean() > 0.3 and np.abs(md.X - clean.X)[empty].max() < 1e-3
    spread = [np.log(md.X[i, strong[i]] / clean.X[i, strong[i]]).std() for i in range(len(md.X))]
    assert 0.1 < np.median(spread) < 0.8 and not np.allclose(md.X, clean.X, atol=0.05)


def test_spectra_look_like_measurements_not_a_flat_noisy_line():
    y, X, comp, mol = render_ir17_v3(300, 1)
    assert X.shape == (300, 1024) and X.dtype == np.float32 and comp is None and len(mol) == 300
    assert np.allclose(X.min(1), 0) and np.allclose(X.max(1), 1)
    # Most of a real spectrum is near its baseline: the median point of most spectra is low.
    assert np.median(np.median(X, axis=1)) < 0.2
    # Widths span sharp computed lines to broad condensed-phase bands: the count of points above half the
    # maximum differs by far between spectra.
    wide = (X > 0.5).sum(1)
    assert wide.max() >= 4 * max(wide.min(), 1)


def test_the_cli_makes_version_3_with_its_own_knobs(tmp_path, capsys):
    from peakmixer.cli import main
    from peakmixer.data.dataset import load

    out = tmp_path / "v3.npz"
    args = ["data", "synth", "--kind", "synth-ir17", "--version", "3", "--n", "60", "--out", str(out)]
    assert main([*args, "--knob", "p_gas=1.0", "--knob", "noise_max=0.001"]) == 0
    ds = load(out)
    assert ds.provenance["generator_version"] == "3" and ds.provenance["knobs"]["p_gas"] == 1.0
    assert main([*args, "--knob", "separation=2"]) != 0  # a synth-bac30 knob
    assert "'separation=2': expected NAME=VALUE with NAME one of" in capsys.readouterr().err


def test_version_3_does_not_depend_on_the_number_of_worker_processes(monkeypatch):
    import concurrent.futures

    import peakmixer.synth.ir17_realistic as synthir

    pools = []

    class CountedPool(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args[0] if args else kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(synthir, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setattr(synthir, "worker_count", lambda: 2)
    many = render_ir17_v3(2500, 2)  # three row blocks, rendered in two forked processes
    assert pools == [2] or not sys.platform.startswith("linux")  # the pool really ran (fork: Linux only)
    monkeypatch.setattr(synthir, "worker_count", lambda: 1)
    one = render_ir17_v3(2500, 2)
    assert len(pools) <= 1  # one worker: no pool
    for a, b in zip(many, one, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_a_stale_cached_file_is_made_again(tmp_path):
    path = benchmarks.ensure_synth("synth-ir17", 60, 1, tmp_path, "4")
    made = path.read_bytes()
    # A file of the same name from another recipe (here: other knobs) would name its runs' data wrongly.
    benchmarks.make_synth("synth-ir17", 60, 1, "3").save(path)
    assert benchmarks.ensure_synth("synth-ir17", 60, 1, tmp_path, "4") == path and path.read_bytes() == made
    mtime = path.stat().st_mtime_ns
    benchmarks.ensure_synth("synth-ir17", 60, 1, tmp_path, "4")  # the current recipe: kept as it is
    assert path.stat().st_mtime_ns == mtime
