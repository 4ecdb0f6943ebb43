"""Parallel sweep workers: one process per share of the cores, each taking runs no other worker holds;
they stop when the sweep that started them stops.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from peakmixer.studies.sweep import SweepConfig, run_sweep
from peakmixer.train.device import default_threads


def _worker(cfg: SweepConfig, threads: int, progress: bool, options: dict[str, Any]) -> None:
    """One sweep worker process: its share of the cores, runs no other worker holds."""
    import torch

    torch.set_num_threads(threads)
    run_sweep(cfg, progress=progress, skip_taken=True, **options)


@contextmanager
def _workers_stop_with_this_process(procs: list) -> Iterator[None]:
    """Stop the worker processes `procs` when this process is stopped (SIGTERM, Ctrl-C, an error) before they
    end: otherwise they live on as orphans, training and writing rows. A stopped worker's run resumes from its
    last checkpoint next time. SIGTERM becomes an exit here only from the main thread, where Python allows a
    handler."""

    def exit_on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm) if main else None
    try:
        yield
    finally:
        if main:  # None: a handler not set from Python, which cannot be put back from here
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            if proc.pid is not None:  # started
                proc.join()


def run_workers(
    cfg: SweepConfig,
    workers: int,
    *,
    progress: bool = True,
    threads: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """`workers` sweep processes over one plan, each with `threads` torch threads (default
    `train.default_threads`: the free cores divided among the workers); each takes the next run no other
    holds (run claims) and rows go into the one table under its lock; `options` are `run_sweep`'s
    (`retrain_missing`, `replace_changed`, `datasets`). A last pass in this process picks up
    anything left and returns the rows."""
    import multiprocessing

    threads = threads or default_threads(workers)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    procs = [ctx.Process(target=_worker, args=(cfg, threads, progress, options)) for _ in range(workers)]
    with _workers_stop_with_this_process(procs):
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    failed = [i for i, proc in enumerate(procs) if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"sweep workers {failed} of {workers} failed (see their messages above)")
    return run_sweep(cfg, progress=progress, **options)
