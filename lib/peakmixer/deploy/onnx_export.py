"""A trained model as an ONNX file that runs without torch: fp32, or static int8 (QDQ, per-channel weights).

`export_onnx` writes the model with what a user's software needs in its metadata (input axis, labels, task,
threshold, normalisation, the run's config id; `read_metadata`), after checking the file against torch on
the test split: the largest |logit difference| must be at most `FP32_TOLERANCE`. `quantize_int8` adds
static int8 quantization calibrated on spectra of the model's training split, measures the change of the
main metric (micro-F1 or accuracy) against fp32 on the test split, and refuses, writing nothing, when it
exceeds a bound. Both write atomically: a refused or interrupted export leaves an older file as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import peakmixer
from peakmixer.config import BadInput, MissingFile, from_dict
from peakmixer.data.dataset import SpectraDataset, file_sha256
from peakmixer.data.preprocess import conform_dataset
from peakmixer.deploy.blocked_conv import height1_form
from peakmixer.files import atomic
from peakmixer.metrics import compute_metrics, main_metric, within
from peakmixer.models import describe
from peakmixer.train.checkpoint import (
    checkpoint_axis,
    checkpoint_scaling,
    load_checkpoint,
    model_from_checkpoint,
    spectrum_kind,
)
from peakmixer.train.config import TrainConfig
from peakmixer.train.prepare import Prepared, label_space, prepare_split

INPUT, OUTPUT = "spectra", "logits"
FORMAT_VERSION = "1"
FP32_TOLERANCE = 1e-4  # largest |logit difference| to torch an fp32 export may have
INT8_BOUND = 0.005  # largest change of the main metric int8 may make against fp32, by default
CALIBRATION_SPECTRA = 256
# The ops whose weights int8 stores; normalisation and activations stay fp32 (their tensors are small).
QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]


class ExportRefused(BadInput, ValueError):
    """An export whose check failed: the file would not behave like the model, so nothing is written."""


@dataclass
class ExportCheck:
    """What an export was checked against: torch's logits (fp32) or fp32's main metric (int8)."""

    split: str
    n_spectra: int
    max_abs_logit_diff: float | None = None  # fp32 vs torch
    metric: str | None = None
    fp32: float | None = None
    int8: float | None = None
    change: float | None = None  # int8 - fp32
    bound: float | None = None
    agreement: float | None = None  # share of spectra whose predicted labels (class) are the same


def allowed_change(metric: str, n_spectra: int, bound: float) -> float:
    """The largest |change| of `metric` an int8 file may make: `bound`, or one spectrum's worth where the
    split cannot measure a change that small (accuracy moves in steps of 1/n: 0.0067 on 150 spectra, where
    0.005 would refuse any changed prediction). Micro-F1 over every label of a split moves in finer steps."""
    return max(bound, 1 / n_spectra) if metric == "accuracy" else bound


def describe_allowed(metric: str, n_spectra: int, bound: float) -> str:
    """The int8 allowance in words, saying when it is one spectrum rather than `bound`."""
    allowed = allowed_change(metric, n_spectra, bound)
    if allowed == bound:
        return f"±{bound:g}"
    return f"±{allowed:.4f}: one of the {n_spectra} spectra, as ±{bound:g} is finer than they can measure"


def model_metadata(checkpoint: Path, ckpt: dict[str, Any]) -> dict[str, str]:
    """The metadata an exported file carries (strings; lists and numbers as JSON)."""
    cfg = from_dict(TrainConfig, ckpt["config"])
    task = ckpt["task"]
    names = list(ckpt["label_names"])
    return {
        "peakmixer_format": FORMAT_VERSION,
        "peakmixer_version": peakmixer.__version__,
        "torch_version": torch.__version__,
        "model": describe(ckpt["model_spec"]),
        "config_id": str(ckpt.get("config_id", "")),
        "source": checkpoint.name,
        "source_sha256": file_sha256(checkpoint),
        "data_hash": str(ckpt.get("data_hash", "")),
        "synthetic_data": json.dumps(ckpt.get("synthetic_data")),
        "task": task,
        "label_names": json.dumps(names),
        # a sigmoid per label, predicted at >= 0.5 (multilabel), or the softmax's most likely class
        "thresholds": json.dumps([0.5] * len(names) if task == "multilabel" else "argmax"),
        "input_axis": json.dumps([float(v) for v in checkpoint_axis(ckpt)]),
        "input_unit": "cm-1",
        "input_name": INPUT,
        "output_name": OUTPUT,
        "normalize": cfg.data.normalize,
        # how a file's spectrum becomes the model's input before `normalize`: its recorded pipeline, or as
        # its training data were imported (min-max, or none)
        "importer_normalize": checkpoint_scaling(ckpt),
        "spectrum_kind": spectrum_kind(ckpt) or "",
        "preprocess": json.dumps(ckpt.get("preprocess")),  # the pipeline raw spectra go through first
        "precision": "fp32",
    }


# The metadata values that hold JSON (the others are plain strings).
JSON_KEYS = (
    "preprocess",
    "label_names",
    "thresholds",
    "input_axis",
    "synthetic_data",
    "fp32_check",
    "int8_check",
    "calibration",
)


def raw_metadata(path: str | Path) -> dict[str, str]:
    """The metadata strings of a file `export_onnx` wrote; a damaged or foreign ONNX file is refused."""
    import onnxruntime as ort

    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: model not found")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a damaged or foreign file
        said = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise BadInput(f"{path}: not a readable ONNX model ({said})") from None
    raw = dict(sess.get_modelmeta().custom_metadata_map)
    if "peakmixer_format" not in raw:
        raise BadInput(f"{path}: an ONNX model without peakmixer metadata (not written by `export`)")
    if raw["peakmixer_format"] != FORMAT_VERSION:  # its metadata may mean something else: not guessed
        raise BadInput(
            f"{path}: written in peakmixer ONNX format {raw['peakmixer_format']!r}; this version reads "
            f"format {FORMAT_VERSION!r} (export the model again, or use the peakmixer version that wrote it)"
        )
    return raw


def read_metadata(path: str | Path) -> dict[str, Any]:
    """`raw_metadata` with its JSON values decoded."""
    return {k: json.loads(v) if k in JSON_KEYS else v for k, v in raw_metadata(path).items()}


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporter's and quantizer's progress lines and warnings, kept off the user's terminal."""
    loggers = [logging.getLogger(name) for name in ("", "torch.onnx", "onnxruntime", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _set_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def store_exact_halves(path: Path, least: int = 1024) -> int:
    """Store each fp32 weight of at least `least` values that fp16 holds exactly as fp16, cast back to
    fp32 when the model loads (ONNX Runtime folds the casts once, at session start; the arithmetic stays
    fp32). Shipped models' weights are fp16-rounded already (`shipped_weights`), so their files halve with
    no change at all; other weights stay fp32. Returns how many weights were stored as fp16."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path))
    graph, casts, kept = proto.graph, [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        if w is None or w.size < least or not np.array_equal(w.astype(np.float16).astype(np.float32), w):
            kept.append(init)
            continue
        kept.append(numpy_helper.from_array(w.astype(np.float16), f"{init.name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{init.name}__fp16"], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.save(proto, str(path))
    return len(casts)


def write_onnx(
    model: torch.nn.Module,
    path: Path,
    metadata: dict[str, str],
    input_length: int,
    *,
    compact: bool = True,
) -> None:
    """`model` (eval mode) as fp32 ONNX at `path`: the batch axis dynamic, convolutions in the blocked 2-D
    form (`blocked_conv`), opset 20, weights inside the file. `compact`: batch norms left unfolded (ONNX
    Runtime folds them when it loads the file) so that weights fp16 holds exactly are stored as fp16
    (`store_exact_halves`); else folded by the exporter, the form int8 quantization starts from."""
    with _quiet():
        torch.onnx.export(
            height1_form(model),
            (torch.zeros(2, 1, input_length),),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            external_data=False,
            verbose=False,
            optimize=not compact,
        )
    if compact:
        store_exact_halves(path)
    _set_metadata(path, metadata)


def session(path: str | Path | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session with `threads` intra-op threads (default: torch's count)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_session(sess, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits (N, K) of (N, 1, L) float32 spectra, `batch` at a time."""
    outs = [sess.run([OUTPUT], {INPUT: X[i : i + batch]})[0] for i in range(0, len(X), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def _split(ckpt: dict[str, Any], data: SpectraDataset, which: str) -> tuple[str, Prepared]:
    cfg = from_dict(TrainConfig, ckpt["config"])
    name = {"test": cfg.data.test_split, "train": cfg.data.train_split}[which]
    where = data.source or "dataset"
    if name not in data.splits:
        raise BadInput(f"{where}: no {which} split {name!r} (has {sorted(data.splits)})")
    ds = conform_dataset(data, ckpt.get("preprocess")).onto(checkpoint_axis(ckpt))
    if label_space(ds, cfg)[1] != list(ckpt["label_names"]):
        raise BadInput(
            f"{where}: its classes are not the model's ({', '.join(ckpt['label_names'][:4])}, ...)"
        )
    return name, prepare_split(ds, name, cfg)


def export_onnx(checkpoint: str | Path, out: str | Path, data: SpectraDataset) -> ExportCheck:
    """Export `checkpoint` to fp32 ONNX at `out`, checked against torch on the test split of `data` (the
    dataset the model was trained on, or one with its labels and splits). Refused above `FP32_TOLERANCE`."""
    checkpoint, out = Path(checkpoint), Path(out)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).eval()
    split, test = _split(ckpt, data, "test")
    with torch.inference_mode():
        ref = torch.cat([model(x).float() for x in test.X.split(256)]).numpy()
    metadata = model_metadata(checkpoint, ckpt)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic(out) as tmp:
        write_onnx(model, tmp, metadata, model.input_length)
        diff = float(np.abs(run_session(session(tmp), test.X.numpy()) - ref).max())
        check = ExportCheck(split, len(ref), max_abs_logit_diff=diff)
        if not diff <= FP32_TOLERANCE:
            raise ExportRefused(
                f"{checkpoint}: the ONNX export's logits differ from torch's by up to {diff:.3g} on the "
                f"{split} split (allowed {FP32_TOLERANCE:g}); nothing written"
            )
        _set_metadata(tmp, metadata | {"fp32_check": json.dumps(asdict(check))})
    return check


def _calibration(train: Prepared, n: int, seed: int = 0) -> np.ndarray:
    X = train.X.numpy()
    pick = np.random.default_rng(seed).choice(len(X), size=min(n, len(X)), replace=False)
    return X[np.sort(pick)]


def quantize_static_int8(folded: Path, out: Path, calibration: np.ndarray) -> None:
    """Static int8 (QDQ, per-channel int8 weights, uint8 activations) of the fp32 file `folded`
    (`write_onnx(compact=False)`), its activation ranges from `calibration` (N, 1, L) spectra.

    Weights use 7 of their 8 bits (``reduce_range``): on a CPU without VNNI, ONNX Runtime multiplies uint8 by
    int8 with an instruction that saturates pairs of full-range products, so the same file predicted
    differently there (the shipped synth-bac30 model lost 2 of 150 test spectra on an AVX2-only AMD EPYC, none
    on one with VNNI). With 7-bit weights no pair saturates and every CPU computes the same integers. The
    first products on the raw spectrum and the last ones before the logits stay fp32 (`edge_products`):
    they are a small share of the work, and the most sensitive to rounding."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            # one spectrum at a time: the percentile calibrator needs equal-sized batches
            self.batches = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.batches, None)
            return None if x is None else {INPUT: x}

    with tempfile.TemporaryDirectory(prefix="peakmixer-int8-") as tmp, _quiet():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(folded), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=edge_products(prepared),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTIZED_OPS,
            # activation ranges at the 99.999th percentile, not the extremes: on the shipped synth-bac30
            # model min-max ranges cost 2 of 150 test spectra (accuracy -0.013), percentiles none
            calibrate_method=CalibrationMethod.Percentile,
        )


def edge_products(path: Path) -> list[str]:
    """Names of the first convolution or matrix product on each path from the model's input, and of the
    last ones on the paths into its output (the nodes of `QUANTIZED_OPS` no other such node separates from
    the graph's input or output)."""
    import onnx

    graph = onnx.load(str(path)).graph
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    maker = {out: node for node in graph.node for out in node.output}
    found: list[str] = []
    seen: set[str] = set()
    todo = [t.name for t in graph.input]
    while todo:  # forward from the input, stopping at each product met
        for node in readers.get(todo.pop(), []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in QUANTIZED_OPS:
                found.append(node.name)
            else:
                todo.extend(node.output)
    todo = [t.name for t in graph.output]
    while todo:  # backward from the output
        node = maker.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in QUANTIZED_OPS:
            found.append(node.name)
        else:
            todo.extend(node.input)
    return found


def _predicted(task: str, logits: np.ndarray) -> np.ndarray:
    return logits >= 0 if task == "multilabel" else logits.argmax(1)


def quantize_int8(
    checkpoint: str | Path,
    out: str | Path,
    data: SpectraDataset,
    *,
    bound: float = INT8_BOUND,
    n_calibration: int = CALIBRATION_SPECTRA,
) -> ExportCheck:
    """Export `checkpoint` as static int8 ONNX at `out`: calibrated on up to `n_calibration` spectra of the
    training split of `data`, the main metric's change against the fp32 export measured on its test split
    and written into the file's metadata. Refused, writing nothing, when |change| exceeds `bound` (or one
    spectrum's worth of accuracy, where that is coarser: `allowed_change`)."""
    checkpoint, out = Path(checkpoint), Path(out)
    ckpt = load_checkpoint(checkpoint)
    task = ckpt["task"]
    train_split, train = _split(ckpt, data, "train")
    split, test = _split(ckpt, data, "test")
    with tempfile.TemporaryDirectory(prefix="peakmixer-export-") as tmp:
        fp32, folded = Path(tmp) / "fp32.onnx", Path(tmp) / "folded.onnx"
        export_onnx(checkpoint, fp32, data)
        metadata = raw_metadata(fp32)
        model = model_from_checkpoint(ckpt).eval()
        write_onnx(model, folded, metadata, model.input_length, compact=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic(out) as q:
            quantize_static_int8(folded, q, _calibration(train, n_calibration))
            X, y = test.X.numpy(), test.y.numpy()
            logits = {"fp32": run_session(session(fp32), X), "int8": run_session(session(q), X)}
            metric = main_metric(task)
            score = {k: float(compute_metrics(task, y, v)[metric]) for k, v in logits.items()}
            same = _predicted(task, logits["int8"]) == _predicted(task, logits["fp32"])
            check = ExportCheck(
                split,
                len(X),
                metric=metric,
                fp32=score["fp32"],
                int8=score["int8"],
                change=score["int8"] - score["fp32"],
                bound=bound,
                agreement=float(same.reshape(len(X), -1).all(1).mean()),
            )
            allowed = allowed_change(metric, len(X), bound)
            if not within(check.change, allowed):
                raise ExportRefused(
                    f"{checkpoint}: int8 changes {metric} on the {split} split from {check.fp32:.4f} to "
                    f"{check.int8:.4f} ({check.change:+.4f}; allowed ±{allowed:.4g}); nothing written"
                )
            metadata |= {
                "precision": "int8",
                "int8_check": json.dumps(asdict(check)),
                "calibration": json.dumps(
                    {"split": train_split, "spectra": min(n_calibration, len(train.X))}
                ),
            }
            _set_metadata(q, metadata)
    return check
