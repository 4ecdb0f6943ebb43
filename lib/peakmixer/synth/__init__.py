"""Layer 3, synthetic benchmarks with ground-truth bands.

`benchmarks` (``synth-ir17`` and ``synth-bac30``, the default data, and `make_synth` / `ensure_synth`),
`ir17_realistic` (the realistic IR generator versions 3-9), `ir17_bands` (the IR band table),
`normalmodes` (computed normal modes of real molecules), `streams` (the random streams they share).
"""

from peakmixer.synth.benchmarks import KINDS, ensure_synth, make_synth

__all__ = ["KINDS", "ensure_synth", "make_synth"]
