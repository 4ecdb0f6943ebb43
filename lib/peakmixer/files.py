"""Writing files so that a reader (or a kill) never sees half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: writing text needs no pandas
    import pandas as pd


@contextmanager
def atomic(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without error it replaces `path` in one
    rename, else it is removed and `path` is left as it was.

        with atomic(out) as tmp:
            tmp.write_text(text)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """`Path.write_text`, atomically (UTF-8)."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csvs(frames: dict[Path, pd.DataFrame]) -> list[Path]:
    """Tables that belong together, replaced together: every one is written to its temporary file first,
    and only when all are written are they renamed into place (a failure leaves all the old ones)."""
    with ExitStack() as stack:
        for path, frame in frames.items():
            frame.to_csv(stack.enter_context(atomic(path)), index=False)
    return list(frames)


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """`DataFrame.to_csv` without the index, atomically."""
    with atomic(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
