"""Preprocessing that travels with the data and the model: steps (`steps`) and pipelines (`pipeline`)."""

from peakmixer.data.preprocess.pipeline import (
    PRESETS,
    Pipeline,
    conform_dataset,
    from_record,
    import_scaling,
    load_pipeline,
    preprocess_dataset,
    read_options,
    save_pipeline,
)
from peakmixer.data.preprocess.steps import STEPS, baseline_methods, step_parameters

__all__ = [
    "PRESETS",
    "STEPS",
    "Pipeline",
    "baseline_methods",
    "conform_dataset",
    "from_record",
    "import_scaling",
    "load_pipeline",
    "preprocess_dataset",
    "read_options",
    "save_pipeline",
    "step_parameters",
]
