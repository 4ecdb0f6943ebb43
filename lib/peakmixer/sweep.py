"""Resumable sweeps (extractor width x mixer x layers x seeds) into one results table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    del sub
