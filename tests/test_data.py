import numpy as np
import pytest

from peakmixer.data.dataset import (
    DatasetError,
    SpectraDataset,
    file_sha256,
    load,
    named_axis,
    random_splits,
    resample_linear,
    toy_dataset,
)


def test_save_load_roundtrip_is_exact_and_deterministic(tmp_path):
    ds = toy_dataset(n=40, length=128)
    ds.extras["y_group"] = np.arange(40) % 3
    a = ds.save(tmp_path / "a.npz")
    b = ds.save(tmp_path / "b.npz")
    assert file_sha256(a) == file_sha256(b)
    back = load(a)
    assert np.array_equal(back.X, ds.X) and back.X.dtype == np.float32
    assert np.array_equal(back.axis, ds.axis) and np.array_equal(back.y, ds.y)
    assert back.ids == ds.ids and back.label_names == ds.label_names and back.task == ds.task
    assert back.splits.keys() == ds.splits.keys()
    assert all(np.array_equal(back.splits[k], ds.splits[k]) for k in ds.splits)
    assert np.array_equal(back.masks, ds.masks)
    assert np.array_equal(back.extras["y_group"], ds.extras["y_group"])
    assert back.provenance["synthetic"] is True


def test_file_is_a_zip_of_npy_without_pickle(tmp_path):
    import zipfile

    path = toy_dataset(n=8, length=32).save(tmp_path / "d.npz")
    names = zipfile.ZipFile(path).namelist()
    assert "header.json" in names and "X.npy" in names
    with np.load(path, allow_pickle=False) as z:  # readable by plain numpy too
        assert z["X"].shape == (8, 32)


def test_nan_spectrum_is_rejected_by_id():
    ds = toy_dataset(n=10, length=32)
    X = ds.X.copy()
    X[3, 5] = np.nan
    with pytest.raises(DatasetError, match=r"1 spectra contain NaN or Inf, e.g. \['toy3'\]"):
        SpectraDataset(X=X, axis=ds.axis, y=ds.y, task=ds.task, label_names=ds.label_names, ids=ds.ids)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(axis=np.linspace(400, 4000, 31)), "axis has shape"),
        (dict(axis=np.linspace(4000, 400, 32)), "strictly ascending"),
        (dict(y=np.zeros((10, 4))), "multilabel y must be"),
        (dict(ids=["a"]), "1 ids for 10 spectra"),
        (dict(task="regression"), "task must be"),
        (dict(splits={"train": np.array([0, 10])}), "outside"),
        (dict(masks=np.ones((5, 31), bool)), "masks must be"),
    ],
)
def test_inconsistent_datasets_are_clear_errors(change, message):
    ds = toy_dataset(n=10, length=32)
    args = dict(X=ds.X, axis=ds.axis, y=ds.y, task=ds.task, label_names=ds.label_names, ids=ds.ids) | change
    with pytest.raises(DatasetError, match=message):
        SpectraDataset(**args)


def test_load_names_the_file_and_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(DatasetError, match="bad.npz: not a peakmixer dataset"):
        load(bad)


def test_resample_linear_is_exact_for_linear_signals():
    x = np.sort(np.random.default_rng(0).uniform(0, 10, 50))
    x[0], x[-1] = 0, 10
    X = np.stack([2 * x + 1, -x]).astype(np.float32)
    target = np.linspace(0, 10, 17)
    out = resample_linear(X, x, target)
    assert np.allclose(out, np.stack([2 * target + 1, -target]), atol=1e-5)
    with pytest.raises(DatasetError, match="reaches outside"):
        resample_linear(X, x, np.linspace(-1, 10, 5))
    edge = resample_linear(X, x, np.array([-1.0, 11.0]), outside="edge")
    assert np.allclose(edge[0], [1, 21])


def test_to_length_keeps_range_and_masks():
    ds = toy_dataset(n=6, length=100)
    out = ds.to_length(256)
    assert out.X.shape == (6, 256) and out.masks.shape == (5, 256)
    assert out.axis[0] == ds.axis[0] and out.axis[-1] == ds.axis[-1]
    assert ds.to_length(100) is ds


def test_named_axes(shared_data):
    ir = named_axis("ir")
    assert ir.shape == (1024,) and ir[0] == 400 and ir[-1] == 4000
    real = np.load(shared_data / "ho2019_meta" / "wavenumbers.npy")
    assert np.abs(named_axis("ho") - real[::-1]).max() < 0.07
    with pytest.raises(ValueError, match="unknown axis"):
        named_axis("uv")


def test_random_splits_are_disjoint_and_stratified():
    y = np.repeat(np.arange(4), 50)
    s = random_splits(len(y), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1, stratify=y)
    allidx = np.concatenate(list(s.values()))
    assert np.array_equal(np.sort(allidx), np.arange(200))
    for idx in s.values():
        assert np.all(np.bincount(y[idx], minlength=4) == np.bincount(y[idx], minlength=4)[0])
    # the seed matters: another seed gives another partition of the same sizes
    other = random_splits(len(y), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=2, stratify=y)
    assert len(other["train"]) == len(s["train"]) and set(other["train"]) != set(s["train"])
    again = random_splits(len(y), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1, stratify=y)
    assert all(np.array_equal(again[k], s[k]) for k in s)


def test_subset_and_split_views():
    ds = toy_dataset(n=20, length=16)
    ds.extras["w"] = np.arange(20.0)
    part = ds.split("val")
    assert len(part) == len(ds.splits["val"])
    assert np.array_equal(part.extras["w"], ds.splits["val"].astype(float))
    with pytest.raises(DatasetError, match="no split 'dev'"):
        ds.split("dev")


def test_downsampling_keeps_a_narrow_band_instead_of_aliasing_it():
    from peakmixer.data.dataset import resample_spectra

    x = np.linspace(400, 4000, 3601)  # 1 cm-1, like raw NIST-IR / QM9S
    band = np.exp(-0.5 * ((x - 1702.3) / 1.5) ** 2)[None].astype(np.float32)  # FWHM 3.5 cm-1
    target = np.linspace(400, 4000, 1024)  # 3.5 cm-1 spacing
    binned = resample_spectra(band, x, target)
    area = np.trapezoid(band[0], x)
    assert np.trapezoid(binned[0], target) == pytest.approx(area, rel=0.02)
    # point sampling misses most of such a band: its area depends on where the grid happens to fall
    assert abs(np.trapezoid(resample_linear(band, x, target)[0], target) - area) > 0.02 * area
    # upsampling stays linear and exact on linear signals
    up = resample_spectra(np.array([[0.0, 1.0]], np.float32), np.array([0.0, 1.0]), np.linspace(0, 1, 5))
    assert np.allclose(up, [[0, 0.25, 0.5, 0.75, 1]])
    with pytest.raises(DatasetError, match="reaches outside"):
        resample_spectra(band, x, np.linspace(300, 4000, 100))


def test_a_dataset_prints_in_one_line_and_the_main_names_come_from_the_package(tmp_path):
    import peakmixer

    ds = toy_dataset(n=40, length=64, n_classes=3, seed=0)
    text = repr(peakmixer.load(ds.save(tmp_path / "toy.npz")))
    assert "\n" not in text and len(text) < 200 and "40 spectra x 64 points" in text and "toy.npz" in text
    for name in peakmixer.__all__:
        assert getattr(peakmixer, name) is not None
    with pytest.raises(AttributeError):
        peakmixer.no_such_name  # noqa: B018


def test_tables_written_together_are_replaced_together(tmp_path, monkeypatch):
    import pandas as pd

    from peakmixer.files import write_csvs

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csvs({a: pd.DataFrame({"x": [1]}), b: pd.DataFrame({"x": [2]})})
    before = a.read_text(), b.read_text()
    real = pd.DataFrame.to_csv
    calls = []

    def fails_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fails_second)
    with pytest.raises(OSError, match="disk full"):
        write_csvs({a: pd.DataFrame({"x": [10]}), b: pd.DataFrame({"x": [20]})})
    assert (a.read_text(), b.read_text()) == before  # the first table, written, was not put in place alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no temporary file left
