"""Downloads against a local HTTP server on 127.0.0.1 (never the internet), and `prepare` on mirror files."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from peakmixer.data import cache
from peakmixer.data import download as dl
from peakmixer.data import prepare as prep
from peakmixer.data.dataset import DatasetError, load
from peakmixer.data.io import import_files
from peakmixer.data.labels import NIST17_NAMES, functional_groups

NOT_FOUND = b"##TITLE=Spectrum not found.\n##END=\n"


class Mirror:
    """Files served by path (query included); optional truncation; a log of (path, Range, time)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.log: list[tuple[str, str | None, float]] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                rng = self.headers.get("Range")
                mirror.log.append((self.path, rng, time.monotonic()))
                data = mirror.files.get(self.path)
                if data is None and self.path.startswith("/cgi/cbook.cgi"):
                    data = NOT_FOUND  # what the WebBook answers for an index it does not have
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
                if start >= len(data) and rng:
                    self.send_error(416)
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body[: mirror.truncate.get(self.path, len(body))])  # short: the link drops

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def mirror():
    m = Mirror()
    yield m
    m.server.shutdown()
    m.server.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def toy_registry(data: bytes, digest: str | None) -> dict:
    entry = {
        "title": "toy",
        "licence": "none",
        "files": [{"name": "a.bin", "url": "https://x.invalid/a", "sha256": digest}],
    }
    return {"toy": entry}


def test_download_checks_hash_and_caches(mirror, tmp_path):
    data = os.urandom(5000)
    mirror.files["/toy/a.bin"] = data
    folder = dl.download(
        "toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=toy_registry(data, sha(data))
    )
    assert folder == tmp_path / "toy" and (folder / "a.bin").read_bytes() == data
    n = len(mirror.log)
    dl.download(
        "toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=toy_registry(data, sha(data))
    )
    assert len(mirror.log) == n  # cached and verified: no request


def test_environment_sets_cache_and_mirror(mirror, tmp_path, monkeypatch):
    data = b"x" * 100
    mirror.files["/toy/a.bin"] = data
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv(dl.ENV_BASE_URL, mirror.url)
    folder = dl.download("toy", progress=False, reg=toy_registry(data, sha(data)))
    assert (tmp_path / "cache" / "toy" / "a.bin").read_bytes() == data and folder.parent == tmp_path / "cache"


def test_hash_mismatch_is_refused_and_the_good_file_kept(mirror, tmp_path):
    good, bad = b"version 1" * 100, b"corrupted" * 100
    mirror.files["/toy/a.bin"] = good
    dl.download(
        "toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=toy_registry(good, sha(good))
    )
    mirror.files["/toy/a.bin"] = bad  # the registry now pins a new version, the server sends garbage
    with pytest.raises(dl.DownloadError, match="checksum mismatch, download refused"):
        reg = toy_registry(bad, sha(b"version 2"))
        dl.download("toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=reg)
    assert (tmp_path / "toy" / "a.bin").read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["a.bin"]  # no temporary or .part left


def test_interrupted_transfer_resumes(mirror, tmp_path):
    data = os.urandom(300_000)
    mirror.files["/toy/a.bin"] = data
    mirror.truncate["/toy/a.bin"] = 200_000  # the connection drops after this many bytes
    reg = toy_registry(data, sha(data))
    with pytest.raises(
        dl.DownloadError, match=r"interrupted after \d+ bytes; run the command again to resume"
    ):
        dl.download("toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=reg)
    kept = (tmp_path / "toy" / "a.bin.part").stat().st_size
    assert 0 < kept <= 200_000 and not (tmp_path / "toy" / "a.bin").exists()
    del mirror.truncate["/toy/a.bin"]
    dl.download("toy", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=reg)
    assert mirror.log[-1][1] == f"bytes={kept}-"  # only the rest was asked for
    assert (tmp_path / "toy" / "a.bin").read_bytes() == data and not (
        tmp_path / "toy" / "a.bin.part"
    ).exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_gives_a_clear_message(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(dl.DownloadError, match=r"cannot reach 127\.0\.0\.1:\d+ .*Check your connection"):
        dl.download("toy", cache_dir=tmp_path, base_url=url, progress=False, reg=toy_registry(b"", None))
    parser = argparse.ArgumentParser()
    prep.add_download_arguments(parser)
    args = parser.parse_args(["bacteria", "--cache-dir", str(tmp_path), "--base-url", url, "--no-progress"])
    assert prep.run_download(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach 127.0.0.1") and "Traceback" not in err


# -- every dataset of the registry, served by the mirror ---------------------------------------------------
def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def bacteria_files() -> dict[str, bytes]:
    """Ho et al. layout, shrunk: 50-point descending axis, a few spectra per split."""
    rng = np.random.default_rng(0)
    arrays = {"wavenumbers.npy": np.linspace(1792.4, 381.98, 50)}
    for part, n in (("reference", 60), ("finetune", 30), ("test", 30)):
        arrays[f"X_{part}.npy"] = rng.random((n, 50))
        arrays[f"y_{part}.npy"] = (np.arange(n) % 30).astype(float)
    for part, n in (("2018clinical", 800), ("2019clinical", 200)):
        arrays[f"X_{part}.npy"] = rng.random((n, 50))
        arrays[f"y_{part}.npy"] = np.repeat([0.0, 3.0], n // 2)
    return {name: npy_bytes(a) for name, a in arrays.items()}


def qm9s_files() -> dict[str, bytes]:
    header = "," + ",".join(str(i) for i in range(20))
    rows = [f"{n}," + ",".join(f"{(n + 1) * i / 20:.3f}" for i in range(20)) for n in range(4)]
    molecules = {
        f"qm9s_csv/{n}.csv": f"{n},{n + 1},{s},9\n1.0\n".encode()
        for n, s in enumerate(["CCO", "CC#N", "c1ccccc1", "C1CC"])
    }
    return {
        "raman_boraden.csv": (header + "\n" + "\n".join(rows) + "\n").encode(),
        "qm9s_csv.zip": zip_bytes(molecules),
        "substructures_957.pkl": pickle.dumps(["[CH3]", "[OX2H]", "c", "[NX1]#[CX2]"]),
    }


def multimodal_files() -> dict[str, bytes]:
    x = np.linspace(400, 4000, 1800)
    spectra = [list(np.exp(-(((x - c) / 40) ** 2))) for c in (1000, 1700, 2900, 3300)]
    buf = io.BytesIO()
    pq.write_table(pa.table({"smiles": ["CCO", "CC(C)=O", "Cc1ccccc1", "CC#N"], "ir_spectra": spectra}), buf)
    return {"multimodal_spectroscopic_dataset.zip": zip_bytes({"data/chunk_0.parquet": buf.getvalue()})}


MIRROR_FILES = {"bacteria": bacteria_files, "qm9s": qm9s_files, "multimodal-ir": multimodal_files}


def mirrored(name: str, mirror: Mirror) -> dict:
    """The real registry entry of `name`, its files served by `mirror` and its hashes swapped for theirs."""
    files = MIRROR_FILES[name]()
    entry = dl.registry()[name]
    for spec in entry["files"]:
        if spec.get("members"):
            spec["members"] = {m: sha(files[m]) for m in spec["members"]}
            data = zip_bytes({f"data/{m}": files[m] for m in spec["members"]})
        else:
            data = files[spec["name"]]
        mirror.files[f"/{name}/{spec['name']}"] = data
        spec["sha256"] = sha(data) if spec["sha256"] else None
    return {name: entry}


def test_every_dataset_has_a_mirror_test():
    assert set(MIRROR_FILES) | {"nist-ir"} == set(dl.list_datasets())


def test_bacteria_download_and_prepare(mirror, tmp_path):
    dl.download(
        "bacteria", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=mirrored("bacteria", mirror)
    )
    ds = prep.prepare("bacteria", cache_dir=tmp_path, out=tmp_path / "b.npz")
    axis = np.load(tmp_path / "bacteria" / "wavenumbers.npy")
    X_ref = np.load(tmp_path / "bacteria" / "X_reference.npy")
    assert ds.task == "multiclass" and ds.label_names == list(dl.HO_STRAINS) and len(ds) == 120
    np.testing.assert_array_equal(ds.axis, axis[::-1])
    np.testing.assert_allclose(ds.X[:60], X_ref[:, ::-1], rtol=1e-6)
    assert {k: len(v) for k, v in ds.splits.items()} == {"reference": 60, "finetune": 30, "test": 30}
    groups = ds.extras["y_group"]
    assert dl.HO_ANTIBIOTICS[groups[ds.y.tolist().index(17)]] == "Vancomycin"  # MRSA 2
    assert dl.HO_ANTIBIOTICS[groups[ds.y.tolist().index(0)]] == "Caspofungin"  # C. albicans
    assert ds.provenance["y_group_names"] == list(dl.HO_ANTIBIOTICS)
    clinical = prep.prepare("bacteria", cache_dir=tmp_path, clinical=True)
    assert clinical.label_names == list(dl.HO_ANTIBIOTICS) and set(clinical.y.tolist()) == {0, 3}
    assert np.bincount(clinical.extras["patient"]).tolist() == [400, 400, 100, 100]


def test_bacteria_member_mismatch_refuses_archive(mirror, tmp_path):
    reg = mirrored("bacteria", mirror)
    reg["bacteria"]["files"][0]["members"]["X_test.npy"] = sha(b"another array")
    with pytest.raises(dl.DownloadError, match="member X_test.npy has sha256"):
        dl.download("bacteria", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=reg)
    assert not (tmp_path / "bacteria" / "X_reference.npy").exists()  # nothing half-installed


def test_qm9s_download_converts_smarts_and_prepares(mirror, tmp_path, monkeypatch):
    folder = dl.download(
        "qm9s", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=mirrored("qm9s", mirror)
    )
    assert (folder / cache.SMARTS_957).read_text().splitlines()[1:] == ["[CH3]", "[OX2H]", "c", "[NX1]#[CX2]"]
    assert cache.smarts_957_path(tmp_path) == folder / cache.SMARTS_957
    ds = prep.prepare("qm9s", cache_dir=tmp_path)
    assert ds.ids == ["qm9s#0", "qm9s#1", "qm9s#2"] and ds.provenance["n_dropped"] == 1  # "C1CC" is no SMILES
    assert ds.y.tolist() == [[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]]
    np.testing.assert_array_equal(ds.axis, np.linspace(500, 4000, 20))
    assert sum(len(v) for v in ds.splits.values()) == 3
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path))  # `data import --labels qm9s957` finds the list there
    (tmp_path / "s.csv").write_text("".join(f"{x},{(x % 89) / 89:.3f}\n" for x in range(400, 4001, 4)))
    (tmp_path / "smiles.csv").write_text("file,smiles\ns.csv,CCO\n")
    import_files(
        [tmp_path / "s.csv"], out=tmp_path / "q.npz", smiles_csv=tmp_path / "smiles.csv", labels="qm9s957"
    )
    imported = load(tmp_path / "q.npz")
    assert imported.label_names == ["[CH3]", "[OX2H]", "c", "[NX1]#[CX2]"] and imported.y.tolist() == [
        [1, 1, 0, 0]
    ]


def test_smarts_pickle_that_names_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(DatasetError, match="refusing to load"):
        dl.convert_smarts_pickle(tmp_path / "evil.pkl", tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_multimodal_download_and_prepare(mirror, tmp_path):
    reg = mirrored("multimodal-ir", mirror)
    dl.download("multimodal-ir", cache_dir=tmp_path, base_url=mirror.url, progress=False, reg=reg)
    ds = prep.prepare("multimodal-ir", cache_dir=tmp_path)
    assert len(ds) == 4 and ds.label_names == list(NIST17_NAMES) and ds.length == 1024
    np.testing.assert_array_equal(ds.y, functional_groups(["CCO", "CC(C)=O", "Cc1ccccc1", "CC#N"]))
    assert sum(len(v) for v in ds.splits.values()) == 4


def test_nist_ir_needs_the_manual_step_then_prepares(tmp_path):
    with pytest.raises(dl.ManualStepRequired, match="huggingface.co/datasets/lycaoduong/FTIR") as e:
        dl.download("nist-ir", cache_dir=tmp_path)
    assert str(tmp_path / "nist-ir") in str(e.value)
    rng = np.random.default_rng(0)
    for sub in ("train", "valid", "test"):
        (tmp_path / "nist-ir" / "ftir" / sub).mkdir(parents=True)
        for k in range(2):
            np.save(tmp_path / "nist-ir" / "ftir" / sub / f"m{k}.npy", rng.random(3602))
            (tmp_path / "nist-ir" / "ftir" / sub / f"m{k}.txt").write_text(
                " ".join("1" if i == k else "0" for i in range(17))
            )
    assert dl.download("nist-ir", cache_dir=tmp_path) == tmp_path / "nist-ir"
    ds = prep.prepare("nist-ir", cache_dir=tmp_path)
    assert len(ds) == 6 and ds.axis[0] == 400 and ds.axis[-1] == 4000 and ds.length == 3602
    assert ds.ids[:2] == ["train/m0.npy", "train/m1.npy"] and ds.y[1, 1] == 1 and ds.y.sum() == 6
    assert list(ds.splits) == ["train", "val", "test"]


def test_nist_webbook_fetcher_is_opt_in_throttled_and_cached(mirror, tmp_path):
    with pytest.raises(dl.ManualStepRequired, match="--accept-nist-terms"):
        dl.fetch_nist_webbook(["64-17-5"], cache_dir=tmp_path, base_url=mirror.url)
    spectrum = b"##TITLE=ethanol\n##DATA TYPE=INFRARED SPECTRUM\n##END=\n"
    mirror.files["/cgi/cbook.cgi?JCAMP=C64175&Index=0&Type=IR"] = spectrum
    kw = dict(cache_dir=tmp_path, base_url=mirror.url, accept_terms=True, delay_s=0.2, progress=False)
    files = dl.fetch_nist_webbook(["64-17-5"], **kw)
    assert [f.name for f in files] == ["64-17-5_0.jdx"] and files[0].read_bytes() == spectrum
    assert [p for p, _, _ in mirror.log] == [
        "/cgi/cbook.cgi?JCAMP=C64175&Index=0&Type=IR",
        "/cgi/cbook.cgi?JCAMP=C64175&Index=1&Type=IR",
    ]
    assert mirror.log[1][2] - mirror.log[0][2] >= 0.15  # throttled (a lower bound: load only adds delay)
    assert dl.fetch_nist_webbook(["64-17-5"], **kw) == files and len(mirror.log) == 2  # all cached
    with pytest.raises(dl.DownloadError, match="not a CAS registry number"):
        dl.fetch_nist_webbook(["ethanol"], **kw)


def test_cli_list_names_every_dataset(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    prep.add_download_arguments(parser)
    assert prep.run_download(parser.parse_args(["--list", "--cache-dir", str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in dl.list_datasets()) and "licence" in out


def test_prepare_before_download_says_what_to_run(tmp_path):
    with pytest.raises(DatasetError, match="data download bacteria"):
        prep.prepare("bacteria", cache_dir=tmp_path)
    assert not Path(tmp_path / "bacteria").exists()
