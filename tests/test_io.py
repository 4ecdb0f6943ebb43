"""Readers and batch import, on real fixtures from ../shared/data (skipped when absent) and made-up files."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import struct

import jcamp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from peakmixer.data.dataset import DatasetError, SpectraDataset, load, named_axis
from peakmixer.data.io import (
    ReadError,
    add_import_arguments,
    import_files,
    read_file,
    read_jcamp,
    read_npy,
    read_parquet,
    read_spc,
    resample,
    run_import,
)
from peakmixer.data.io.base import to_absorbance
from peakmixer.data.labels import functional_groups

EDGE_IR = {  # the IR spectra among the Lancashire JCAMP-DX test files (compound.jdx holds five)
    *(f"compound.jdx#{k}" for k in range(1, 6)),
    *(
        "dupdec1.jdx dupdec2.jdx dupinc2.jdx fixdec1.jdx fixinc1.jdx fixinc2.jdx jtpolys.jdx jtpolysd.jdx"
    ).split(),
    *("pacdec1.jdx scientific_notation_example.jdx sqzdupd1.jdx xyinc1.jdx").split(),
}


def jdx(tmp_path, name: str, body: str, **labels: str) -> object:
    """Write a small JCAMP-DX file: `labels` go in the header, `body` is the data table."""
    header = {"TITLE": name, "JCAMP-DX": "4.24", "DATA TYPE": "INFRARED SPECTRUM", "XUNITS": "1/CM"}
    header |= {k.replace("_", " "): v for k, v in labels.items()}
    text = "".join(f"##{k}={v}\n" for k, v in header.items()) + body + "##END=\n"
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    return parser.parse_args(argv)


# -- acceptance -------------------------------------------------------------------------------------
def test_nist_import_labels_axis_ids(shared_data, tmp_path):
    src = shared_data / "nist_ir_jcamp"
    files = sorted(src.glob("*.jdx"))
    out = tmp_path / "nist.npz"
    report = import_files(files, out=out, smiles_csv=src / "molecules.csv", labels="nist17", axis="ir")
    assert report.rejected == [] and report.out == out
    ds = load(out)
    assert ds.ids == [f.name for f in files]
    np.testing.assert_array_equal(ds.axis, named_axis("ir"))
    assert ds.axis[0] == 400.0 and ds.axis[-1] == 4000.0 and np.all(np.diff(ds.axis) > 0)
    assert np.isfinite(ds.X).all() and ds.X.min() == 0.0 and np.allclose(ds.X.max(axis=1), 1.0)
    table = pd.read_csv(src / "molecules.csv").set_index("file")
    smiles = [table.loc[f.name, "smiles"] for f in files]
    np.testing.assert_array_equal(ds.y, functional_groups(smiles))
    assert ds.extras["smiles"].tolist() == smiles
    assert ds.extras["coverage"].min() > 0.9
    assert json.loads(report.report_path.read_text())["rejected"] == []


def test_edge_cases_keep_ir_and_name_every_rejection(shared_data, tmp_path, capsys):
    src = shared_data / "jcamp_edge_cases"
    out = tmp_path / "edge.npz"
    code = run_import(cli([*map(str, sorted(src.iterdir())), "--out", str(out), "--no-progress"]))
    printed = capsys.readouterr()
    assert code == 0 and "Traceback" not in printed.out + printed.err
    ds = load(out)
    assert set(ds.ids) == EDGE_IR and np.isfinite(ds.X).all()
    report = json.loads((tmp_path / "edge.npz.report.json").read_text())
    reasons = {r["source"]: r["reason"] for r in report["rejected"]}
    named = {s.split("#")[0] for s in reasons} | {i.split("#")[0] for i in ds.ids}
    assert named == {p.name for p in src.iterdir()}  # every file is either kept or named
    for source, reason in reasons.items():
        assert f"{source}: {reason}" in printed.out
    assert "NMR spectrum" in reasons["o01.jdx"] and "NMR spectrum" in reasons["ofid1.jdx"]
    assert "mass spectrum" in reasons["pktab1.jdx"] and "mass spectrum" in reasons["mactab2.jdx"]
    assert "UV/VIS" in reasons["blckpac1.jdx#3"]
    assert "not wavenumbers" in reasons["1HQuinine.jdx"] and "MILLISECONDS" in reasons["difdup_example.jdx"]
    assert "GAS CHROMATOGRAPH" in reasons["coffhd.jdx"]


# -- JCAMP-DX ----------------------------------------------------------------------------------------
def test_jcamp_matches_the_jcamp_package_on_nist(shared_data):
    for path in sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[::5]:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints its warnings
            ref = jcamp.readfile(str(path))
        x, y = (
            np.asarray(ref["x"], float),
            to_absorbance(path.name, np.asarray(ref["y"], float), ref["yunits"])[0],
        )
        order = np.argsort(x)
        (mine,) = read_jcamp(path)
        np.testing.assert_allclose(mine.x, x[order])
        np.testing.assert_allclose(mine.Y[0], y[order], rtol=1e-12)


def test_jcamp_compressed_forms_decode_to_the_same_spectrum(shared_data):
    """Indene in AFFN (xyinc1), DIFDUP (dupinc2, percent T) and absorbance FIX (fixinc2) forms."""
    src = shared_data / "jcamp_edge_cases"
    (affn,), (difdup,), (absorb,) = (
        read_jcamp(src / n) for n in ("xyinc1.jdx", "dupinc2.jdx", "fixinc2.jdx")
    )
    assert difdup.x.size == 3734  # ##NPOINTS; the jcamp package decodes 3731 values from this file
    unsaturated = absorb.Y[0] < 2.5  # fixinc2 caps absorbance at 3, the T files reach T = 0
    np.testing.assert_allclose(affn.Y[0][unsaturated], absorb.Y[0][unsaturated], atol=1e-3)
    interp = np.interp(difdup.x, affn.x, affn.Y[0])
    assert np.median(np.abs(interp - difdup.Y[0])) < 1e-3
    (packed,), (plain,) = (read_jcamp(src / n) for n in ("jtpolys.jdx", "jtpolysd.jdx"))
    np.testing.assert_allclose(packed.Y, plain.Y, atol=2e-3)


def test_jcamp_asdf_tokens(tmp_path):
    # Line 1: SQZ 0, DIF +1, DIF 0 repeated by DUP (T = twice), DIF +11 -> 0 1 1 1 12, ending in DIF form.
    # Line 2 opens with the Y-check value 12 (SQZ A2), repeated once by DUP. Line 3: SQZ 22, DIF +13.
    # Line 4: AFFN, opening with the Y-check value 35 that follows line 3's DIF ending.
    lines = ["100@J%TJ1", "105A2T", "106B2J3", "108 35 1 2 3 4 5 6 7 8"]
    body = "##XYDATA=(X++(Y..Y))\n" + "\n".join(lines) + "\n"
    labels = dict(YUNITS="ABSORBANCE", FIRSTX="100", LASTX="115")
    (spectrum,) = read_jcamp(jdx(tmp_path, "t.jdx", body, NPOINTS="16", **labels))
    assert spectrum.Y[0].tolist() == [0, 1, 1, 1, 12, 12, 22, 35, 1, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(spectrum.x, np.arange(100, 116))
    (error,) = read_jcamp(jdx(tmp_path, "t.jdx", body, NPOINTS="17", **labels))
    assert error.reason == "decoded 16 points but ##NPOINTS=17 (corrupt or truncated data)"
    (error,) = read_jcamp(jdx(tmp_path, "t.jdx", body.replace("A2T", "A3T"), NPOINTS="16", **labels))
    assert error.reason == "line 11: Y-check failed (13 != 12)"  # file line numbers
    (error,) = read_jcamp(jdx(tmp_path, "t.jdx", body.replace("B2J3", "B2!3"), NPOINTS="16", **labels))
    assert error.reason == "line 12: unexpected character '!' in data"


def test_jcamp_transmittance_to_absorbance(tmp_path):
    x = " ".join(f"{1000 + 10 * i} {t}" for i, t in enumerate([100, 50, 10, 1] * 5))
    path = jdx(tmp_path, "t.jdx", f"##XYPOINTS=(XY..XY)\n{x}\n", YUNITS="%T")
    (s,) = read_jcamp(path)
    np.testing.assert_allclose(s.Y[0][:4], [0.0, np.log10(2), 1.0, 2.0])
    assert "percent" in s.meta["y"]


def test_jcamp_bad_blocks_have_their_own_reasons(tmp_path):
    ir = (
        "##TITLE=ir\n##DATA TYPE=INFRARED SPECTRUM\n##XUNITS=1/CM\n##YUNITS=ABSORBANCE\n##XYPOINTS=(XY..XY)\n"
    )
    ir += "".join(f"{500 + i},{i % 7}\n" for i in range(40)) + "##END=\n"
    nmr = "##TITLE=nmr\n##DATA TYPE=NMR SPECTRUM\n##XUNITS=HZ\n##XYPOINTS=(XY..XY)\n1,2\n##END=\n"
    nan = ir.replace("##TITLE=ir", "##TITLE=nan").replace("505,5", "505,?")
    (tmp_path / "link.jdx").write_text(f"##TITLE=link\n##DATA TYPE=LINK\n##BLOCKS=3\n{ir}{nmr}{nan}##END=\n")
    good, bad_nmr, bad_nan = read_jcamp(tmp_path / "link.jdx")
    assert good.ids == ["link.jdx#1"] and good.x.size == 40
    assert bad_nmr.source == "link.jdx#2" and "NMR spectrum" in bad_nmr.reason
    assert bad_nan.source == "link.jdx#3" and "NaN" in bad_nan.reason
    (tmp_path / "peaks.jdx").write_text(ir.replace("##XYPOINTS", "##PEAK TABLE"))
    assert "peak table" in read_jcamp(tmp_path / "peaks.jdx")[0].reason
    (tmp_path / "nodata.jdx").write_text(ir.split("##XYPOINTS")[0] + "##END=\n")
    assert "no ##XYDATA" in read_jcamp(tmp_path / "nodata.jdx")[0].reason


# -- SPC, npy, parquet, csv ---------------------------------------------------------------------------
def test_spc_witec_fixture(shared_data):
    path = sorted((shared_data / "fcm_ecoli_raman" / "spc").glob("*.spc"))[0]
    (s,) = read_spc(path)
    raw = path.read_bytes()
    assert s.x.size == 1024 and 110 < s.x[0] < s.x[-1] < 3376
    np.testing.assert_array_equal(s.x, np.frombuffer(raw, "<f4", 1024, 512))
    np.testing.assert_array_equal(s.Y[0], np.frombuffer(raw, "<f4", 1024, 512 + 4096 + 32))


def spc_bytes(y: np.ndarray, *, flags: int = 0x04, exp: int = 12, version: int = 0x4B) -> bytes:
    """A multifile SPC with evenly spaced X (400..1000) and 32-bit fixed-point Y."""
    npts, nsub = y.shape[1], y.shape[0]
    head = bytearray(512)
    struct.pack_into("<BBBbiddi", head, 0, flags, version, 0, exp, npts, 400.0, 1000.0, nsub)
    head[28] = 1  # x type: wavenumber
    body = b""
    for row in y:
        sub = bytearray(32)
        struct.pack_into("<Bb", sub, 0, 0, exp)
        body += bytes(sub) + (row * 2.0 ** (32 - exp)).astype("<i4").tobytes()
    return bytes(head) + body


def test_spc_multifile_fixed_point_and_refusals(tmp_path):
    y = np.stack([np.linspace(0, 3, 61), np.linspace(3, 0, 61)])
    (tmp_path / "m.spc").write_bytes(spc_bytes(y))
    (s,) = read_spc(tmp_path / "m.spc")
    assert s.ids == ["m.spc#0", "m.spc#1"]
    np.testing.assert_allclose(s.x, np.linspace(400, 1000, 61))
    np.testing.assert_allclose(s.Y, y, atol=1e-6)
    (tmp_path / "cut.spc").write_bytes(spc_bytes(y)[:-10])
    with pytest.raises(ReadError, match="truncated"):
        read_spc(tmp_path / "cut.spc")
    (tmp_path / "old.spc").write_bytes(spc_bytes(y, version=0x4D))
    with pytest.raises(ReadError, match="old-format"):
        read_spc(tmp_path / "old.spc")
    (tmp_path / "xy.spc").write_bytes(spc_bytes(y, flags=0x44))
    with pytest.raises(ReadError, match="XYXY"):
        read_spc(tmp_path / "xy.spc")


def test_spc_import_onto_ho_axis(shared_data, tmp_path):
    files = sorted((shared_data / "fcm_ecoli_raman" / "spc").glob("*.spc"))[:20]
    report = import_files(files, out=tmp_path / "raman.npz", axis="ho", normalize=None)
    ds = load(tmp_path / "raman.npz")
    assert report.rejected == [] and len(ds) == 20 and ds.extras["coverage"].min() == 1.0
    (first,) = read_spc(files[0])
    np.testing.assert_allclose(ds.X[0], np.interp(ds.axis, first.x, first.Y[0]), rtol=1e-5)


def test_npy_descending_axis_is_flipped(shared_data, tmp_path):
    axis = np.load(shared_data / "ho2019_meta" / "wavenumbers.npy")
    assert axis[0] > axis[-1]  # stored descending
    X = np.random.default_rng(0).random((4, 1000))
    np.save(tmp_path / "X_demo.npy", X)
    (s,) = read_npy(tmp_path / "X_demo.npy", axis_file=shared_data / "ho2019_meta" / "wavenumbers.npy")
    np.testing.assert_array_equal(s.x, axis[::-1])
    np.testing.assert_array_equal(s.Y, X[:, ::-1])
    assert s.ids == [f"X_demo.npy#{i}" for i in range(4)]
    with pytest.raises(ReadError, match="1-D array"):
        read_npy(shared_data / "ho2019_meta" / "y_2018clinical.npy")
    with pytest.raises(ReadError, match="no wavenumber axis"):
        read_npy(tmp_path / "X_demo.npy")


def test_parquet_multimodal_example(shared_data, tmp_path):
    path = shared_data / "ibm_ir_example" / "example_data_1.parquet"
    (s,) = read_parquet(path)
    assert s.Y.shape == (100, 1800) and s.x[0] == 400.0 and s.x[-1] == 4000.0
    report = import_files([path], out=tmp_path / "mm.npz", labels="nist17")
    ds = load(tmp_path / "mm.npz")
    assert report.rejected == [] and ds.ids[:2] == ["example_data_1.parquet#0", "example_data_1.parquet#1"]
    np.testing.assert_array_equal(ds.y, functional_groups(s.smiles))
    assert ds.y.sum(axis=0).min() > 0  # every one of the 17 groups occurs in this file


def test_parquet_ragged_and_null_rows(tmp_path):
    rows = [[0.1 * i for i in range(50)], None, [1.0, 2.0], [0.2 * i for i in range(50)]]
    pq.write_table(
        pa.table({"ir_spectra": rows, "smiles": ["C", "CC", "CCC", "CCCC"]}), tmp_path / "p.parquet"
    )
    good, *bad = read_parquet(tmp_path / "p.parquet")
    assert good.ids == ["p.parquet#0", "p.parquet#3"] and good.smiles == ["C", "CCCC"]
    assert {(e.source, e.reason) for e in bad} == {
        ("p.parquet#1", "null spectrum"),
        ("p.parquet#2", "2 values instead of 50"),
    }


def test_csv_layouts(shared_data, tmp_path):
    (wide,) = read_file(shared_data / "fcm_ecoli_raman" / "hsNorm_RamanSpectra.csv")
    assert wide.Y.shape == (536, 333) and 600 < wide.x[0] < wide.x[-1] < 1800
    with pytest.raises(ReadError, match="column indices"):
        read_file(shared_data / "coffee_ftir" / "coffee_spectra.csv")
    with pytest.raises(ReadError, match="unrecognised CSV layout"):
        read_file(shared_data / "nist_ir_jcamp" / "molecules.csv")
    (tmp_path / "xy.csv").write_text("x,y\n" + "".join(f"{4000 - 10 * i},{i % 5}\n" for i in range(300)))
    (two,) = read_file(tmp_path / "xy.csv")
    assert two.x[0] == 1010 and two.x[-1] == 4000 and two.Y[0, -1] == 0  # flipped to ascending


def test_every_bad_input_gets_its_own_reason(tmp_path):
    ok = "".join(f"{400 + 4 * i},{np.sin(i / 9):.4f}\n" for i in range(901))
    header = ",".join(f"{x:g}" for x in np.linspace(400, 940, 20))
    (tmp_path / "nan.csv").write_text(
        f"{header}\n" + ",".join(["1"] * 20) + "\n" + ",".join(["nan"] * 20) + "\n"
    )
    (tmp_path / "repeat.csv").write_text(ok + "4000,1\n")
    (tmp_path / "short.csv").write_text("".join(f"{400 + i},{i}\n" for i in range(5)))
    (tmp_path / "mystery.xyz").write_bytes(b"\x00\x01binary")
    (tmp_path / "empty.jdx").write_bytes(b"")
    (tmp_path / "fake.npy").write_text("no numpy header here")
    jdx(tmp_path, "nmr.jdx", "##XYPOINTS=(XY..XY)\n1,2\n", DATA_TYPE="NMR SPECTRUM")
    (tmp_path / "flat.csv").write_text("".join(f"{400 + 4 * i},1.0\n" for i in range(901)))
    (tmp_path / "good.csv").write_text(ok)
    report = import_files(sorted(tmp_path.iterdir()), out=tmp_path / "out.npz")
    reasons = {r.source: r.reason for r in report.rejected}
    assert report.kept == ["good.csv"]
    assert "NaN" in reasons["nan.csv#1"] and "not monotonic" in reasons["repeat.csv"]
    assert "too short: 5 points" in reasons["short.csv"] and "unknown format" in reasons["mystery.xyz"]
    assert "empty file" in reasons["empty.jdx"] and "NMR spectrum" in reasons["nmr.jdx"]
    assert reasons["fake.npy"] == "not a NumPy .npy file (its content does not start like one)"
    assert "constant spectrum" in reasons["flat.csv"]
    assert "covers 15%" in reasons["nan.csv#0"]  # 400-700 cm-1 of 400-4000


# -- resampling, coverage, writing ---------------------------------------------------------------------
def test_resample_bin_mean_and_linear():
    target = named_axis("ir")
    fine = np.linspace(350, 4050, 20001)
    line = 2.0 + 0.001 * fine
    np.testing.assert_allclose(
        resample(fine, line[None], target)[0], 2.0 + 0.001 * target, rtol=1e-6
    )  # float32, as stored
    comb = np.where(np.arange(fine.size) % 2 == 0, 1.0, -1.0)  # above the target's Nyquist limit
    assert np.abs(resample(fine, comb[None], target)).max() < 0.05  # averaged away, not aliased to +-1
    coarse = np.linspace(300, 4100, 400)
    np.testing.assert_allclose(
        resample(coarse, np.sin(coarse / 200)[None], target)[0],
        np.interp(target, coarse, np.sin(coarse / 200)),
        atol=1e-6,  # resample_linear computes in float32
    )


def test_coverage_rule_and_edge_padding(tmp_path):
    for name, lo in (("narrow.csv", 2500), ("wide.csv", 600)):
        (tmp_path / name).write_text("".join(f"{x},{x / 1000:.3f}\n" for x in range(lo, 4001, 2)))
    report = import_files(sorted(tmp_path.glob("*.csv")), out=tmp_path / "o.npz", normalize=None)
    assert report.kept == ["wide.csv"]
    assert report.rejected[0].source == "narrow.csv" and "covers 42%" in report.rejected[0].reason
    ds = load(tmp_path / "o.npz")
    below = ds.axis < 600
    np.testing.assert_allclose(ds.X[0, below], 0.6, atol=1e-3)  # edge value held below the data
    assert ds.extras["coverage"][0] == pytest.approx(3400 / 3600)


def test_nothing_kept_leaves_existing_output(tmp_path):
    out = tmp_path / "keep.npz"
    SpectraDataset(
        X=np.zeros((1, 3)),
        axis=[1.0, 2.0, 3.0],
        y=np.zeros((1, 0)),
        task="multilabel",
        label_names=[],
        ids=["a"],
    ).save(out)
    before = out.read_bytes()
    (tmp_path / "bad.xyz").write_text("nothing")
    with pytest.raises(DatasetError, match="keep.npz: exists; --overwrite replaces it"):
        import_files([tmp_path / "bad.xyz"], out=out)
    # asked to replace it: an import that keeps nothing still leaves it as it was
    report = import_files([tmp_path / "bad.xyz"], out=out, overwrite=True)
    assert report.out is None and out.read_bytes() == before
    assert json.loads(report.report_path.read_text())["rejected"][0]["source"] == "bad.xyz"


def test_duplicate_names_become_relative_paths(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "s.csv").write_text(
            "".join(f"{x},{(x % 97) / 97:.3f}\n" for x in range(400, 4001, 4))
        )
    report = import_files([tmp_path / "a", tmp_path / "b"], out=tmp_path / "o.npz")
    assert report.kept == ["a/s.csv", "b/s.csv"]


def test_cli_exit_codes(tmp_path, capsys):
    (tmp_path / "bad.xyz").write_text("nothing")
    assert (
        run_import(cli([str(tmp_path / "bad.xyz"), "--out", str(tmp_path / "o.npz"), "--no-progress"])) == 1
    )
    args = cli([str(tmp_path / "bad.xyz"), "--out", str(tmp_path / "o.npz"), "--labels", "nonsense"])
    assert run_import(args) == 2
    err = capsys.readouterr().err
    assert "--labels 'nonsense'" in err and "Traceback" not in err


def test_the_ho_et_al_layout_imports_with_its_labels(shared_data, tmp_path):
    """X_<split>.npy with y_<split>.npy and wavenumbers.npy (Ho et al. 2019) import directly, labelled."""
    import shutil

    from peakmixer.cli import main
    from peakmixer.data.dataset import load

    ho = tmp_path / "ho"
    ho.mkdir()
    shutil.copy(shared_data / "ho2019_meta" / "wavenumbers.npy", ho)
    y = np.load(shared_data / "ho2019_meta" / "y_2018clinical.npy")[:40]
    np.save(ho / "y_2018clinical.npy", y)
    rng = np.random.default_rng(0)
    np.save(ho / "X_2018clinical.npy", rng.random((40, 1000)))
    np.save(ho / "X_other.npy", rng.random((3, 1000)))  # no y_other.npy: unlabelled rows, refused
    out = tmp_path / "ho.npz"
    assert main(["data", "import", str(ho), "--axis", "ho", "--out", str(out), "--no-progress"]) == 0
    ds = load(out)
    assert ds.task == "multiclass" and len(ds.ids) == 40
    assert [ds.label_names[k] for k in ds.y] == [f"{int(v):02d}" for v in y]
    assert ds.label_names == sorted(ds.label_names, key=int)  # Ho et al.'s numeric class order
    report = json.loads(out.with_name(out.name + ".report.json").read_text())
    assert {r["source"].split("#")[0] for r in report["rejected"]} == {"X_other.npy"}
    np.save(ho / "y_bad.npy", np.arange(5.5, 7.5))
    np.save(ho / "X_bad.npy", rng.random((2, 1000)))
    assert (
        main(["data", "import", str(ho / "X_bad.npy"), "--axis", "ho", "--out", str(tmp_path / "b.npz")]) == 1
    )
