"""Galactic/Thermo SPC reader (the "new" little-endian 0x4B format, as written by WITec and GRAMS).

Layout: a 512-byte header; when ``ftflg & 0x80`` (TXVALS) one X array of ``fnpts`` float32 follows,
otherwise X is evenly spaced from ``ffirst`` to ``flast``; then ``fnsub`` subfiles, each a 32-byte
sub-header followed by ``fnpts`` Y values. Y is float32 when the exponent byte is -128, else a
fixed-point integer scaled by 2**(exp-32) (2**(exp-16) for 16-bit ``TSPREC`` data). Several subfiles
sharing the X array become ``file#k`` spectra. Refused, with the reason: the old 0x4D format, the
big-endian 0x4C variant, per-subfile X arrays (``TXYXYS``), non-wavenumber x types, truncated files.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from peakmixer.data.io.base import Item, ReadError, Spectra, ascending, to_absorbance

_HEADER = 512
_SUBHEADER = 32
_TSPREC, _TMULTI, _TXYXYS, _TXVALS = 0x01, 0x04, 0x40, 0x80
# fxtype codes that are wavenumbers: 1 = wavenumber (cm-1), 13 = Raman shift (cm-1); 2 = micrometers.
_XTYPE_NAMES = {0: "arbitrary", 3: "nanometers", 4: "seconds", 6: "Hz", 9: "m/z", 10: "ppm"}
# fytype codes: 2 absorbance, 128 transmission, 129 reflectance; the rest are intensities kept as is.
_YUNITS = {2: "ABSORBANCE", 128: "TRANSMITTANCE", 129: "REFLECTANCE"}

VERSION_NEW_LSB = 0x4B


def is_spc(head: bytes) -> bool:
    """Whether the first bytes look like a Galactic SPC file (by its version byte)."""
    return len(head) >= 2 and head[1] in (0x4B, 0x4C, 0x4D)


def read_spc(path: str | Path) -> list[Item]:
    """The spectra of one SPC file: one `Spectra` with a row per subfile; `ReadError` if unreadable."""
    path = Path(path)
    name = path.name
    raw = path.read_bytes()
    if len(raw) < _HEADER:
        raise ReadError(name, f"truncated SPC file ({len(raw)} bytes, header needs {_HEADER})")
    ftflg, fversn, _fexper, fexp = struct.unpack_from("<BBBb", raw, 0)
    if fversn == 0x4D:
        raise ReadError(name, "old-format (0x4D) SPC files are not supported")
    if fversn != VERSION_NEW_LSB:
        raise ReadError(name, f"SPC version byte 0x{fversn:02X} is not supported (expected 0x4B)")
    fnpts, ffirst, flast, fnsub = struct.unpack_from("<iddi", raw, 4)
    fxtype, fytype = raw[28], raw[29]
    if ftflg & _TXYXYS:
        raise ReadError(name, "SPC with a separate X array per subfile (XYXY) is not supported")
    if fnpts < 2 or fnsub < 1:
        raise ReadError(name, f"SPC header declares {fnpts} points and {fnsub} subfiles")
    nsub = fnsub if ftflg & _TMULTI else 1
    ybytes = 2 if ftflg & _TSPREC else 4
    need = _HEADER + (4 * fnpts if ftflg & _TXVALS else 0) + nsub * (_SUBHEADER + ybytes * fnpts)
    if len(raw) < need:
        raise ReadError(name, f"truncated SPC file ({len(raw)} bytes, the header implies {need})")
    pos = _HEADER
    if ftflg & _TXVALS:
        x = np.frombuffer(raw, "<f4", fnpts, pos).astype(np.float64)
        pos += 4 * fnpts
    else:
        x = np.linspace(ffirst, flast, fnpts)
    if fxtype == 2:
        with np.errstate(divide="ignore"):
            x = 1e4 / x
    elif fxtype not in (1, 13):
        kind = _XTYPE_NAMES.get(fxtype, f"code {fxtype}")
        raise ReadError(name, f"x axis type {kind} is not wavenumbers")
    rows = []
    for _ in range(nsub):
        subexp = struct.unpack_from("<b", raw, pos + 1)[0]
        pos += _SUBHEADER
        exp = fexp if fexp == -128 else subexp
        if exp == -128:
            y = np.frombuffer(raw, "<f4", fnpts, pos).astype(np.float64)
        elif ybytes == 2:
            y = np.frombuffer(raw, "<i2", fnpts, pos) * 2.0 ** (exp - 16)
        else:
            y = np.frombuffer(raw, "<i4", fnpts, pos) * 2.0 ** (exp - 32)
        pos += ybytes * fnpts
        rows.append(y)
    Y = np.stack(rows)
    if not np.isfinite(Y).all():
        raise ReadError(name, f"{int((~np.isfinite(Y)).sum())} of {Y.size} values are NaN or Inf")
    Y, conversion = to_absorbance(name, Y, _YUNITS.get(fytype, "ARBITRARY"))
    x, Y = ascending(name, x, Y)
    ids = [name] if nsub == 1 else [f"{name}#{k}" for k in range(nsub)]
    source = raw[45:54].split(b"\0", 1)[0].decode("latin-1").strip()
    meta = {"format": "spc", "xtype": int(fxtype), "ytype": int(fytype), "source": source, "y": conversion}
    if fxtype == 13:  # the x axis is a Raman shift: the file says what kind of spectrum it holds
        meta["kind"] = "raman"
    return [Spectra(x=x, Y=Y, ids=ids, meta=meta)]
