"""JCAMP-DX reader for IR and Raman spectra.

Handles ``(X++(Y..Y))`` data in AFFN and every ASDF compression form (PAC, SQZ, DIF, DUP, with DIF
Y-checks), ``(XY..XY)`` point lists, ``$$`` comments, CR/CRLF/LF line ends and compound (``LINK``)
files, whose data blocks become ``file#<block>`` spectra. Each block is checked: a block that is not IR
or Raman (NMR, mass, UV/VIS, chromatogram...), a peak table, NTUPLES data, or data whose decoded point
count disagrees with ``##NPOINTS`` is refused with that reason.

We decode ourselves rather than through the ``jcamp`` package because that package prints to stdout
instead of raising, fails on CRLF AFFN files and inline comments, and miscounts some DIF/DUP files;
the tests compare both on the NIST fixtures where the package does work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from peakmixer.data.io.base import Item, ReadError, Spectra, ascending, to_absorbance, wavenumbers

_SQZ = {c: d for d, c in enumerate("@ABCDEFGHI")} | {c: -(d + 1) for d, c in enumerate("abcdefghi")}
_DIF = {c: d for d, c in enumerate("%JKLMNOPQR")} | {c: -(d + 1) for d, c in enumerate("jklmnopqr")}
_DUP = {c: d + 1 for d, c in enumerate("STUVWXYZs")}

# One data token. An AFFN exponent needs a sign ("1.5E+03") because a bare E/e is a SQZ digit.
_TOKEN = re.compile(
    r"(?P<sep>[\s,;]+)"
    r"|(?P<affn>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]\d+)?)"
    r"|(?P<sqz>[@A-Ia-i][\d.]*)"
    r"|(?P<dif>[%J-Rj-r][\d.]*)"
    r"|(?P<dup>[S-Zs]\d*)"
    r"|(?P<missing>\?)"
)
_DATA_LABELS = {"XYDATA", "XYPOINTS", "PEAKTABLE", "PEAKASSIGNMENTS", "NTUPLES", "DATATABLE"}
_VIBRATIONAL = re.compile(r"INFRARED|RAMAN|\b(FT-?)?N?IR\b")


@dataclass
class _Block:
    labels: dict[str, str] = field(default_factory=dict)
    data_label: str | None = None
    data_lines: list[tuple[int, str]] = field(default_factory=list)


def read_jcamp(path: str | Path) -> list[Item]:
    """All data blocks of a JCAMP-DX file: a `Spectra` (n=1) per usable block, a `ReadError` per other.

    A single-block file gives one item named after the file; blocks of a compound file are named
    ``file#<BLOCK_ID>``. Raises `ReadError` when the file is not JCAMP-DX or holds no data block.
    """
    path = Path(path)
    blocks = _parse_blocks(path.name, _decode(path.read_bytes()))
    data_blocks = [b for b in blocks if b.labels.get("DATATYPE", "").strip().upper() != "LINK"]
    if not data_blocks:
        raise ReadError(path.name, "JCAMP-DX file without a data block")
    items: list[Item] = []
    for k, block in enumerate(data_blocks, start=1):
        block_id = block.labels.get("BLOCKID", "").strip() or str(k)
        source = path.name if len(data_blocks) == 1 else f"{path.name}#{block_id}"
        try:
            items.append(_block_spectra(source, block))
        except ReadError as e:
            items.append(e)
    return items


def _decode(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # old instrument files; every byte maps to a character
    # \x1a is the DOS end-of-file mark that old test files carry after ##END.
    return text.replace("\x1a", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _label_key(label: str) -> str:
    """JCAMP compares labels ignoring case, spaces, dashes, slashes and underscores."""
    return re.sub(r"[\s\-/_]", "", label).upper()


def _parse_blocks(name: str, lines: list[str]) -> list[_Block]:
    stack: list[_Block] = []
    done: list[_Block] = []
    key: str | None = None
    for lineno, line in enumerate(lines, start=1):
        line = line.split("$$", 1)[0].strip()
        if not line:
            continue
        if line.startswith("##"):
            label, _, value = line[2:].partition("=")
            key = _label_key(label)
            if key == "TITLE":
                stack.append(_Block())
            if not stack:
                raise ReadError(name, "not a JCAMP-DX file (no ##TITLE before the first label)")
            block = stack[-1]
            if key == "END":
                done.append(stack.pop())
                key = None
                continue
            block.labels.setdefault(key, value.strip())
            if key in _DATA_LABELS:
                block.data_label = key
        elif not stack:
            if done:
                continue  # trailing text after the last ##END
            raise ReadError(name, "not a JCAMP-DX file (text before ##TITLE)")
        elif key is not None and stack[-1].data_label == key:
            stack[-1].data_lines.append((lineno, line))
        elif key is not None:
            stack[-1].labels[key] += "\n" + line
    # A block without ##END (truncated file) is still checked; its point count will expose truncation.
    return done + stack[::-1]


def _number(source: str, labels: dict[str, str], key: str, default: float | None = None) -> float:
    text = labels.get(key)
    if text is None or not text.strip():
        if default is None:
            raise ReadError(source, f"missing ##{key}")
        return default
    try:
        return float(text.split()[0].replace(",", "."))
    except ValueError:
        raise ReadError(source, f"##{key}={text!r} is not a number") from None


def _check_kind(source: str, labels: dict[str, str]) -> None:
    dtype = labels.get("DATATYPE", "").strip()
    u = dtype.upper()
    xunits = labels.get("XUNITS", "").strip()
    if "NMR" in u:
        raise ReadError(source, f"NMR spectrum (DATA TYPE={dtype}), not IR or Raman")
    if "MASS" in u:
        raise ReadError(source, f"mass spectrum (DATA TYPE={dtype}), not IR or Raman")
    if "UV" in u or "VIS" in u:
        raise ReadError(source, f"UV/VIS spectrum (DATA TYPE={dtype}), not IR or Raman")
    if dtype and not _VIBRATIONAL.search(u):
        raise ReadError(source, f"not an IR or Raman spectrum (DATA TYPE={dtype})")
    if not dtype:
        wavenumbers(source, np.zeros(1), xunits or "(none)")  # no DATA TYPE: accept wavenumber x only
    if labels.get("DATACLASS", "").strip().upper().startswith("NTUPLES"):
        raise ReadError(source, "NTUPLES data class is not supported")


def _block_spectra(source: str, block: _Block) -> Spectra:
    labels = block.labels
    _check_kind(source, labels)
    if block.data_label in {"PEAKTABLE", "PEAKASSIGNMENTS"}:
        raise ReadError(source, "peak table (stick spectrum), not a continuous spectrum")
    if block.data_label not in {"XYDATA", "XYPOINTS"}:
        raise ReadError(source, "no ##XYDATA or ##XYPOINTS data")
    form = labels[block.data_label].replace(" ", "").upper()
    xfactor = _number(source, labels, "XFACTOR", 1.0)
    yfactor = _number(source, labels, "YFACTOR", 1.0)
    if re.fullmatch(r"\(?X\+\+\(Y\.\.Y\)\)?", form):
        y = _decode_xppyy(source, block.data_lines)
        first, last = _number(source, labels, "FIRSTX"), _number(source, labels, "LASTX")
        npoints = int(_number(source, labels, "NPOINTS", float(len(y))))
        if len(y) != npoints:
            raise ReadError(
                source, f"decoded {len(y)} points but ##NPOINTS={npoints} (corrupt or truncated data)"
            )
        x = np.linspace(first, last, npoints)
    elif re.fullmatch(r"\(?XY\.\.XY\)?", form):
        x, y = _decode_xyxy(source, block.data_lines)
        x = x * xfactor
    else:
        raise ReadError(source, f"data form {labels[block.data_label]!r} is not supported")
    y = y * yfactor
    x = wavenumbers(source, x, labels.get("XUNITS", "1/CM"))
    yunits = labels.get("YUNITS", "")
    if not np.isfinite(y).all():
        raise ReadError(source, f"{int((~np.isfinite(y)).sum())} of {y.size} values are NaN, Inf or missing")
    y, conversion = to_absorbance(source, y, yunits)
    x, Y = ascending(source, x, y[None, :])
    meta = {"format": "jcamp", "data_type": labels.get("DATATYPE", ""), "yunits": yunits, "y": conversion}
    dtype = meta["data_type"].upper()
    if (
        kind := "raman"
        if "RAMAN" in dtype
        else "ir"
        if "INFRARED" in dtype or "IR SPECTRUM" in dtype
        else None
    ):
        meta["kind"] = kind
    return Spectra(x=x, Y=Y, ids=[source], meta=meta)


def _tokens(source: str, lineno: int, line: str) -> list[tuple[str, float]]:
    """(kind, value) tokens of one data line; kind is ``abs``, ``dif`` or ``dup``."""
    out: list[tuple[str, float]] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            raise ReadError(source, f"line {lineno}: unexpected character {line[pos]!r} in data")
        pos = m.end()
        kind, text = m.lastgroup, m.group()
        if kind == "sep":
            continue
        if kind == "missing":
            out.append(("abs", math.nan))
            continue
        table = {"sqz": _SQZ, "dif": _DIF, "dup": _DUP}.get(kind)
        number = text if table is None else f"{table[text[0]]}{text[1:]}"
        try:
            value = float(number)
        except ValueError:
            raise ReadError(source, f"line {lineno}: malformed number {text!r}") from None
        out.append(("abs" if kind in {"affn", "sqz"} else kind, value))
    return out


def _decode_xppyy(source: str, lines: list[tuple[int, str]]) -> np.ndarray:
    """Ordinates of ``(X++(Y..Y))`` lines; each line starts with an abscissa, which we do not need."""
    ys: list[float] = []
    ended_in_dif = False
    for lineno, line in lines:
        tokens = _tokens(source, lineno, line)
        if not tokens:
            continue
        if tokens[0][0] != "abs":
            raise ReadError(source, f"line {lineno}: data line does not start with an abscissa")
        vals: list[float] = []
        kind, step = "", 0.0
        for tkind, v in tokens[1:]:
            if tkind == "abs":
                vals.append(v)
                kind = "abs"
            elif tkind == "dif":
                base = vals[-1] if vals else (ys[-1] if ys else None)
                if base is None:
                    raise ReadError(source, f"line {lineno}: difference without a preceding value")
                vals.append(base + v)
                kind, step = "dif", v
            else:  # DUP repeats the previous token: a value, or a difference (then it keeps adding)
                if not kind or not vals:
                    raise ReadError(source, f"line {lineno}: repeat count without a preceding value")
                for _ in range(int(v) - 1):
                    vals.append(vals[-1] + step if kind == "dif" else vals[-1])
        # After a line ending in DIF form, the next line's first ordinate repeats the last one (Y-check).
        if ended_in_dif and vals and tokens[1][0] == "abs":
            if ys and not math.isclose(vals[0], ys[-1], rel_tol=1e-9, abs_tol=1e-9):
                raise ReadError(source, f"line {lineno}: Y-check failed ({vals[0]:g} != {ys[-1]:g})")
            vals = vals[1:]
        ys.extend(vals)
        if len(tokens) > 1:
            ended_in_dif = kind == "dif"
    return np.asarray(ys, dtype=np.float64)


def _decode_xyxy(source: str, lines: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
    values: list[float] = []
    for lineno, line in lines:
        for kind, v in _tokens(source, lineno, line):
            if kind != "abs":
                raise ReadError(source, f"line {lineno}: compressed values in an (XY..XY) table")
            values.append(v)
    if len(values) % 2:
        raise ReadError(source, f"(XY..XY) table has an odd number of values ({len(values)})")
    pairs = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]
