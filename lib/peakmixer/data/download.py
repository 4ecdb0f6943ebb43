"""Hash-checked, resumable downloads of the real datasets, and their conversion to `SpectraDataset`.

The registry (``resources/datasets.json``) lists per dataset its files, where they come from (a URL, a
figshare article or a Zenodo record) and their sha256 where it is known. Unknown sha256 are ``null``:
for figshare and Zenodo files the repository's published md5 is checked instead; a plain URL without
a hash is downloaded unchecked and its sha256 printed so that it can be pinned. Archives may pin the
sha256 of their members, which are verified after extraction.

Downloads are built on pooch (atomic move into place after the hash check, so a failed or mismatching
download never replaces a good file) with our own HTTP downloader, which resumes an interrupted
transfer from its ``.part`` file with a Range request and shows a tqdm progress bar.

Environment: ``PEAKMIXER_DATA`` sets the cache folder (default: the user cache, ``~/.cache/peakmixer``
on Linux); ``PEAKMIXER_BASE_URL`` replaces every source by a mirror serving ``<dataset>/<file name>``
(used by the tests with a local server; repository lookups are then skipped).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests
from tqdm import tqdm

import peakmixer
from peakmixer.config import BadInput
from peakmixer.data import labels as labelsets
from peakmixer.data.cache import SMARTS_957, cache_root
from peakmixer.data.dataset import DatasetError, file_sha256
from peakmixer.data.labels import BAC30_CLASS_TO_GROUP, BAC30_GROUPS, BAC30_LABELS
from peakmixer.files import atomic, write_text

ENV_BASE_URL = "PEAKMIXER_BASE_URL"
NIST_WEBBOOK = "https://webbook.nist.gov"
USER_AGENT = f"peakmixer/{peakmixer.__version__} (python-requests; research data download)"
TIMEOUT = (15, 60)  # seconds to connect, seconds between bytes

# Ho et al. 2019's 30 isolates (class id = index), their empiric treatment groups and the group names:
# one table, in peakmixer.synth.benchmarks (from csho33/bacteria-ID config.py, MIT), shared with synth-bac30.
HO_STRAINS: tuple[str, ...] = BAC30_LABELS
HO_ANTIBIOTICS: tuple[str, ...] = BAC30_GROUPS
HO_GROUP_OF_STRAIN: tuple[int, ...] = tuple(BAC30_CLASS_TO_GROUP.tolist())
# Clinical sets (Ho et al. notebook 3): spectra are stored patient by patient, in blocks of this size.
HO_CLINICAL_PER_PATIENT = {"2018clinical": 400, "2019clinical": 100}

NIST_TERMS = (
    "The NIST Chemistry WebBook (NIST Standard Reference Database 69, https://webbook.nist.gov) is\n"
    "Standard Reference Data, (c) U.S. Secretary of Commerce under the Standard Reference Data Act\n"
    "(https://www.nist.gov/director/copyright-fair-use-and-licensing-statements-srd-data-and-software).\n"
    "Read the WebBook's notices; keep the JCAMP-DX headers intact, cite NIST, do not redistribute the\n"
    "files, and keep the request rate low (this fetcher sends one request at a time, at least one second\n"
    "apart, and caches every file). Re-run with --accept-nist-terms to confirm that you accept those terms."
)


class DownloadError(BadInput, RuntimeError):
    """A download that failed or was refused; the message says why and what to do."""


class ManualStepRequired(DownloadError):
    """The dataset needs a step we must not automate (a licence click-through, accepting terms)."""


# -- registry and locations -------------------------------------------------------------------------
def registry() -> dict[str, dict[str, Any]]:
    """The committed dataset registry (``resources/datasets.json``)."""
    text = resources.files("peakmixer").joinpath("resources/datasets.json").read_text(encoding="utf-8")
    return json.loads(text)


def list_datasets() -> list[str]:
    """Names accepted by `download` and `prepare`."""
    return sorted(registry())


def _entry(name: str, reg: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    reg = registry() if reg is None else reg
    if name not in reg:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name]


# -- one file ---------------------------------------------------------------------------------------
class ResumableDownloader:
    """pooch downloader that keeps partial data in `part` and resumes it with an HTTP Range request."""

    def __init__(self, part: Path, *, progress: bool = True):
        self.part = part
        self.progress = progress

    def __call__(self, url: str, output_file: str, pooch_obj: Any = None) -> None:
        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": USER_AGENT} | ({"Range": f"bytes={offset}-"} if offset else {})
        host = urlparse(url).netloc
        try:
            with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT) as r:
                if r.status_code == 416 and offset:  # the partial file is no prefix of this one
                    self.part.unlink()
                    return self(url, output_file, pooch_obj)
                r.raise_for_status()
                if offset and r.status_code != 206:
                    offset = 0  # the server ignored the Range header: start again
                length = r.headers.get("Content-Length")
                total = offset + int(length) if length else None
                bar = tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=self.part.stem,
                    disable=not self.progress,
                )
                with open(self.part, "ab" if offset else "wb") as f, bar:
                    for chunk in r.iter_content(chunk_size=1 << 16):
                        f.write(chunk)
                        bar.update(len(chunk))
        except requests.exceptions.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.response.status_code} {e.response.reason}") from None
        except requests.exceptions.ConnectionError as e:
            if self.part.exists() and self.part.stat().st_size > offset:
                raise self._interrupted(url) from None
            raise DownloadError(
                f"cannot reach {host} ({type(e).__name__}). Check your connection, or set {ENV_BASE_URL} "
                "to a mirror; partial data are kept and a re-run resumes."
            ) from None
        except requests.exceptions.RequestException:
            raise self._interrupted(url) from None
        got = self.part.stat().st_size
        if total is not None and got < total:
            raise self._interrupted(url)
        os.replace(self.part, output_file)  # pooch checks the hash, then moves it into place

    def _interrupted(self, url: str) -> DownloadError:
        got = self.part.stat().st_size if self.part.exists() else 0
        return DownloadError(
            f"transfer of {url} interrupted after {got} bytes; run the command again to resume "
            f"(partial data: {self.part})"
        )


def _resolve(dataset: str, spec: dict[str, Any], base_url: str | None) -> tuple[str, str | None]:
    """(url, pooch known_hash) of one registry file; repository lookups give md5 when sha256 is unknown."""
    sha = f"sha256:{spec['sha256']}" if spec.get("sha256") else None
    if base_url:
        return f"{base_url.rstrip('/')}/{dataset}/{spec['name']}", sha
    if "url" in spec:
        return spec["url"], sha
    if "figshare" in spec:
        fs = spec["figshare"]
        api = f"https://api.figshare.com/v2/articles/{fs['article']}/versions/{fs['version']}"
        listing = {f["name"]: (f["download_url"], f.get("computed_md5")) for f in _api_json(api)["files"]}
    elif "zenodo" in spec:
        api = f"https://zenodo.org/api/records/{spec['zenodo']}"
        listing = {
            f["key"]: (f["links"]["self"], f.get("checksum", "").removeprefix("md5:"))
            for f in _api_json(api)["files"]
        }
    else:
        raise DownloadError(f"{dataset}/{spec['name']}: registry entry has no url, figshare or zenodo source")
    if spec["name"] not in listing:
        raise DownloadError(f"{api} has no file {spec['name']!r}; it lists {sorted(listing)}")
    url, md5 = listing[spec["name"]]
    return url, sha or (f"md5:{md5}" if md5 else None)


def _api_json(url: str) -> dict[str, Any]:
    try:
        r = requests.get(url, headers={"User-Agent": USER_AGENT}, timeout=TIMEOUT)
        r.raise_for_status()
        return r.json()
    except requests.exceptions.RequestException as e:
        raise DownloadError(f"cannot query {url} ({type(e).__name__}); check your connection") from None


def _fetch_file(
    dataset: str, spec: dict[str, Any], folder: Path, base_url: str | None, progress: bool
) -> Path:
    """Download one registry file into `folder` (unless present with the right hash); its path."""
    target = folder / spec["name"]
    sha = spec.get("sha256")
    if target.exists() and (sha is None or file_sha256(target) == sha):
        return target  # cached; avoids a repository lookup for files without a pinned sha256
    url, known_hash = _resolve(dataset, spec, base_url)
    downloader = ResumableDownloader(folder / f"{spec['name']}.part", progress=progress)
    try:
        path = Path(pooch.retrieve(url, known_hash, fname=spec["name"], path=folder, downloader=downloader))
    except ValueError as e:  # pooch's hash mismatch; its temporary file is gone, `target` untouched
        raise DownloadError(
            f"{dataset}/{spec['name']}: checksum mismatch, download refused ({e}). Any previous copy is kept."
        ) from None
    if known_hash is None:
        print(
            f"{dataset}/{spec['name']}: no published checksum; sha256 {file_sha256(path)} "
            "(pin it in resources/datasets.json)",
            file=sys.stderr,
        )
    return path


def _unpack(archive: Path, dest: Path, members: dict[str, str | None]) -> None:
    """Extract a zip: its pinned `members` into `dest` (verified first), or all files as new folder `dest`.

    Files are found by base name and extracted to a temporary folder beside `dest`; they replace earlier
    copies only once all have passed, so a bad archive never leaves a half-installed dataset.
    """
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            archive.unlink()  # useless; the next run downloads it afresh
            raise DownloadError(f"{archive.name} is not a valid zip archive; deleted, run again") from None
        with zf:
            by_name = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
            wanted = members or {n: None for n in by_name}
            missing = sorted(set(wanted) - set(by_name))
            if missing:
                raise DownloadError(f"{archive.name} lacks {missing}; it holds {sorted(by_name)}")
            for name, sha in wanted.items():
                with zf.open(by_name[name]) as src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if sha is not None and file_sha256(tmp / name) != sha:
                    archive.unlink()
                    raise DownloadError(
                        f"{archive.name}: member {name} has sha256 {file_sha256(tmp / name)}, expected "
                        f"{sha}; archive refused and deleted (earlier copies of its files are kept)"
                    )
        if not members:
            os.replace(tmp, dest)
            return
        for name in wanted:
            os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _members_ok(folder: Path, members: dict[str, str | None]) -> bool:
    return bool(members) and all(
        (folder / n).exists() and (sha is None or file_sha256(folder / n) == sha)
        for n, sha in members.items()
    )


def download(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    reg: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Download (or find in the cache) every file of dataset `name`; returns its cache folder.

    Archives are unpacked beside them (members verified when pinned). For ``qm9s`` the SMARTS pickle is
    converted to ``substructures_957.txt``. Raises `DownloadError` with a clear message (offline, hash
    mismatch, interrupted transfer) and `ManualStepRequired` for ``nist-ir`` until its files are in place.
    `reg` replaces the committed registry (tests).
    """
    entry = _entry(name, reg)
    folder = cache_root(cache_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    if entry.get("manual") and not entry["files"]:
        if fcgformer_root(folder).is_dir():
            return folder
        raise ManualStepRequired(entry["manual"].format(dir=folder))
    base_url = base_url or os.environ.get(ENV_BASE_URL)
    for spec in entry["files"]:
        members = spec.get("members", {})
        if spec.get("unzip") and _members_ok(folder, members):
            continue
        if spec.get("unzip") and not members and (folder / Path(spec["name"]).stem).is_dir():
            continue
        path = _fetch_file(name, spec, folder, base_url, progress)
        if spec.get("unzip"):
            _unpack(path, folder if members else folder / Path(spec["name"]).stem, members)
    if name == "qm9s":
        convert_smarts_pickle(folder / "substructures_957.pkl", folder / SMARTS_957)
    return folder


# -- the 957 SMARTS: a pickle read without executing anything ----------------------------------------
class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only builtin containers and strings: a pickle that names any other class is refused."""

    ALLOWED = {("builtins", "list"), ("builtins", "tuple"), ("builtins", "str")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain strings are allowed")


def convert_smarts_pickle(pkl: Path, txt: Path) -> Path:
    """Write the SMARTS list pickled in `pkl` as a text file (`labels.load_smarts_file` format)."""
    try:
        with open(pkl, "rb") as f:
            smarts = _PlainUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DatasetError(f"{pkl}: not a plain list of SMARTS strings ({e})") from None
    if not isinstance(smarts, list | tuple) or not all(isinstance(s, str) for s in smarts):
        raise DatasetError(f"{pkl}: expected a list of SMARTS strings, got {type(smarts).__name__}")
    labelsets.compile_smarts(smarts)  # fails naming the first pattern RDKit rejects
    header = f"# {len(smarts)} substructure SMARTS from {pkl.name} (sha256 {file_sha256(pkl)})\n"
    write_text(txt, header + "".join(f"{s}\n" for s in smarts))
    return txt


# -- NIST WebBook (opt-in) ------------------------------------------------------------------------------
def fetch_nist_webbook(
    cas_numbers: Iterable[str],
    *,
    accept_terms: bool = False,
    cache_dir: str | os.PathLike | None = None,
    delay_s: float = 2.0,
    max_per_compound: int = 10,
    base_url: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Fetch the IR JCAMP-DX files of the NIST WebBook for `cas_numbers`, one request at a time.

    Files go to ``<cache>/nist-ir/webbook/<CAS>_<index>.jdx``; a compound's indices are tried from 0
    until the WebBook answers "Spectrum not found" (remembered in a ``.missing`` file), at most
    `max_per_compound`. Cached files are never requested again; `delay_s` separates requests.
    Raises `ManualStepRequired` unless `accept_terms` (see `NIST_TERMS`).
    """
    if not accept_terms:
        raise ManualStepRequired(NIST_TERMS)
    folder = cache_root(cache_dir) / "nist-ir" / "webbook"
    folder.mkdir(parents=True, exist_ok=True)
    base = (base_url or os.environ.get(ENV_BASE_URL) or NIST_WEBBOOK).rstrip("/")
    found: list[Path] = []
    last_request = 0.0
    for cas in tqdm(list(cas_numbers), disable=not progress, desc="NIST WebBook"):
        cas = cas.strip()
        if not re.fullmatch(r"\d{2,7}-\d{2}-\d", cas):
            raise DownloadError(f"{cas!r} is not a CAS registry number (like 64-17-5)")
        for index in range(max_per_compound):
            path, missing = folder / f"{cas}_{index}.jdx", folder / f"{cas}_{index}.missing"
            if missing.exists():
                break
            if not path.exists():
                time.sleep(max(0.0, last_request + delay_s - time.monotonic()))
                last_request = time.monotonic()
                params = {"JCAMP": "C" + cas.replace("-", ""), "Index": index, "Type": "IR"}
                try:
                    r = requests.get(
                        f"{base}/cgi/cbook.cgi",
                        params=params,
                        headers={"User-Agent": USER_AGENT},
                        timeout=TIMEOUT,
                    )
                    r.raise_for_status()
                except requests.exceptions.RequestException as e:
                    raise DownloadError(
                        f"NIST WebBook request for {cas} failed ({type(e).__name__}); files so far are kept"
                    ) from None
                if "Spectrum not found" in r.text[:200]:
                    missing.touch()
                    break
                with atomic(path) as tmp:
                    tmp.write_bytes(r.content)
            found.append(path)
    return found


# -- prepare: downloaded files -> SpectraDataset ------------------------------------------------------


def fcgformer_root(folder: Path) -> Path:
    """Where the FCG-Former archive unpacks its NIST-IR files."""
    return folder / "ftir"
