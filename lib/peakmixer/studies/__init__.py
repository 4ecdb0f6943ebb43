"""Layer 4, studies: experiments over many runs and the only writers of ``results/``.

`sweep` (plans and runs a study's grid), `store` (the results store: reading, checking, statistics and
claims), `ipeval` (Table 1: interpretable-path faithfulness), `sim2real` (synthetic-trained models on real
spectra), `calibration` (what simple baselines reach on each benchmark), `bench` (speed benchmarks).
"""
