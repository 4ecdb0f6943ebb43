"""ONNX export (fp32 and static int8), its metadata, and the shipped ONNX models."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from peakmixer.cli import main
from peakmixer.config import BadInput, from_dict
from peakmixer.deploy import export_onnx, onnx_export, open_model, quantize_int8, read_metadata
from peakmixer.deploy.blocked_conv import height1_form
from peakmixer.deploy.onnx_export import ExportRefused, allowed_change, describe_allowed
from peakmixer.ip import attach_ip
from peakmixer.metrics import compute_metrics, main_metric
from peakmixer.models import build_model
from peakmixer.paths import MODELS_DIR
from peakmixer.synth.benchmarks import model_data
from peakmixer.train.checkpoint import checkpoint_axis, load_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.prepare import prepare_split

IR_INT8 = MODELS_DIR / "synth-ir17_ip.int8.onnx"


def _with_trained_statistics(model: nn.Module) -> nn.Module:
    """Batch norms with running statistics and affine weights away from their defaults, as after training."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("extractor", "ip"), [("respeak", "off"), ("respeak", "trainable"), ("cnnpeak", "off")]
)
def test_the_2d_form_computes_the_same_logits(extractor, ip):
    torch.manual_seed(0)
    blocks = 2 if extractor == "respeak" else None
    model = build_model(
        extractor, "mlpmixer", n_classes=5, width=8, blocks=blocks, input_length=256, hidden=16
    )
    model = _with_trained_statistics(attach_ip(model, mode=ip, task="multilabel", channels=8))
    twin = height1_form(model)
    x = torch.rand(3, 1, 256)
    with torch.inference_mode():
        assert torch.allclose(twin(x), model(x), atol=1e-5)
    assert not any(isinstance(m, nn.Conv2d) for m in model.extractor.modules())  # the original untouched
    assert not any(isinstance(m, nn.Conv1d) for m in twin.extractor.modules())


def _test_split(checkpoint: Path):
    ckpt = load_checkpoint(checkpoint)
    cfg = from_dict(TrainConfig, ckpt["config"])
    data = model_data(checkpoint)
    return ckpt, data, prepare_split(data.onto(checkpoint_axis(ckpt)), cfg.data.test_split, cfg)


def test_onnx_export_round_trip_and_metadata(ir_checkpoint, tmp_path, capsys):
    ckpt, data, test = _test_split(ir_checkpoint)
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(ir_checkpoint), "--format", "onnx", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"{out}: ") and f"on {len(test.X)} test spectra" in said
    meta = read_metadata(out)
    check = meta["fp32_check"]
    assert check["n_spectra"] == len(test.X) and check["max_abs_logit_diff"] <= 1e-4
    assert f"largest |logit - torch's| {check['max_abs_logit_diff']:.2g}" in said
    assert meta["label_names"] == list(ckpt["label_names"]) and meta["task"] == "multilabel"
    assert meta["config_id"] == ckpt["config_id"] and meta["precision"] == "fp32"
    assert np.array_equal(meta["input_axis"], checkpoint_axis(ckpt))
    assert meta["thresholds"] == [0.5] * 17 and meta["spectrum_kind"] == "ir"
    torch_model, onnx_model = open_model(ir_checkpoint), open_model(out)
    assert (torch_model.engine, onnx_model.engine) == ("torch", "onnxruntime")
    for batch in (1, 5):  # the batch axis is dynamic
        X = test.X[:batch].numpy()
        assert np.abs(onnx_model.logits(X) - torch_model.logits(X)).max() <= 1e-4


def test_a_refused_export_writes_nothing_and_keeps_the_old_file(ir_checkpoint, tmp_path, monkeypatch):
    data = model_data(ir_checkpoint)
    old = tmp_path / "model.onnx"
    old.write_text("an earlier export")
    with monkeypatch.context() as patch, pytest.raises(ExportRefused, match="differ from torch's"):
        patch.setattr(onnx_export, "FP32_TOLERANCE", -1.0)
        export_onnx(ir_checkpoint, old, data)
    with pytest.raises(ExportRefused, match=r"int8 changes micro_f1 .* allowed"):
        quantize_int8(ir_checkpoint, tmp_path / "int8.onnx", data, bound=-1.0)
    assert old.read_text() == "an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_int8_may_change_accuracy_by_one_spectrum_where_the_bound_is_finer_than_the_split():
    assert allowed_change("accuracy", 150, 0.005) == pytest.approx(1 / 150)  # one flip: 0.0067 > 0.005
    assert allowed_change("accuracy", 1000, 0.005) == 0.005  # one flip: 0.001, the bound measures
    assert allowed_change("micro_f1", 150, 0.005) == 0.005
    assert "one of the 150 spectra" in describe_allowed("accuracy", 150, 0.005)
    assert describe_allowed("micro_f1", 825, 0.005) == "±0.005"


@pytest.mark.parametrize("name", ["synth-ir17_ip", "synth-bac30_ip"])
def test_the_shipped_onnx_models_hold_their_checks(name):
    pt, fp32, int8 = (MODELS_DIR / f"{name}{s}" for s in (".pt", ".onnx", ".int8.onnx"))
    assert max(p.stat().st_size for p in (pt, fp32, int8)) <= 5e6
    ckpt, _, test = _test_split(pt)
    X, y = test.X.numpy(), test.y.numpy()
    logits = {p.name: open_model(p).logits(X) for p in (pt, fp32, int8)}
    assert np.abs(logits[fp32.name] - logits[pt.name]).max() <= 1e-4
    metric = main_metric(ckpt["task"])
    score = {k: compute_metrics(ckpt["task"], y, v)[metric] for k, v in logits.items()}
    stored = read_metadata(int8)["int8_check"]
    assert stored["bound"] == onnx_export.INT8_BOUND
    assert abs(score[int8.name] - score[fp32.name]) <= allowed_change(metric, len(X), stored["bound"]) + 1e-9
    assert score[fp32.name] == pytest.approx(stored["fp32"], abs=0.005)  # ORT differs by CPU, slightly
    assert read_metadata(int8)["precision"] == "int8" and read_metadata(fp32)["precision"] == "fp32"


@pytest.mark.parametrize("name", ["synth-ir17_ip", "synth-bac30_ip"])
def test_shipped_int8_weights_fit_seven_bits_and_the_edge_products_stay_fp32(name):
    # |weight| <= 64: a pair of uint8 x int8 products stays within int16 (2 * 255 * 64 < 32767), so CPUs
    # without VNNI, whose instruction saturates there, compute the same integers as the others
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(MODELS_DIR / f"{name}.int8.onnx")).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = [init[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in init]
    int8 = [w for w in weights if w.dtype == np.int8]
    assert len(int8) > 40 and all(np.abs(w.astype(int)).max() <= 64 for w in int8)
    maker = {o: n for n in graph.node for o in n.output}
    products = [n for n in graph.node if n.op_type in onnx_export.QUANTIZED_OPS]
    edges = set(onnx_export.edge_products(MODELS_DIR / f"{name}.int8.onnx"))
    assert {maker["logits"].name} <= edges and len(edges) < len(products) // 4
    for node in products:  # a product is quantized exactly when its weight comes through DequantizeLinear
        quantized = maker[node.input[1]].op_type == "DequantizeLinear" if node.input[1] in maker else False
        assert quantized == (node.name not in edges), node.name


def test_an_onnx_file_that_is_not_ours_damaged_or_of_another_format_is_refused_by_name(tmp_path):
    import onnx

    proto = onnx.load(str(MODELS_DIR / "synth-ir17_ip.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    cases = {
        "newer.onnx": ({**meta, "peakmixer_format": "99"}, "written in peakmixer ONNX format '99'"),
        "foreign.onnx": ({}, "an ONNX model without peakmixer metadata"),
    }
    for name, (props, said) in cases.items():
        del proto.metadata_props[:]
        for key, value in props.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp_path / name))
        with pytest.raises(BadInput, match=said) as refused:
            read_metadata(tmp_path / name)
        assert str(tmp_path / name) in str(refused.value)
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes((MODELS_DIR / "synth-ir17_ip.onnx").read_bytes()[:5000])
    with pytest.raises(BadInput, match="damaged.onnx: not a readable ONNX model"):
        read_metadata(damaged)
    assert read_metadata(MODELS_DIR / "synth-ir17_ip.onnx")["peakmixer_format"] == onnx_export.FORMAT_VERSION


def test_export_and_predict_refuse_wrong_combinations_in_one_line(ir_checkpoint, tmp_path, capsys):
    assert (
        main(["export", "--checkpoint", str(ir_checkpoint), "--int8", "--out", str(tmp_path / "x.pt")]) == 2
    )
    assert "--int8 needs --format onnx" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--model", str(IR_INT8), "--engine", "torch"]) == 2
    assert "runs with --engine onnxruntime" in capsys.readouterr().err


def test_evaluate_scores_with_onnx_runtime_when_asked(ir_checkpoint, tmp_path):
    metrics = {}
    for engine in ("torch", "onnxruntime"):
        args = ["evaluate", "--checkpoint", str(ir_checkpoint), "--split", "test", "--engine", engine]
        assert main([*args, "--metrics", str(tmp_path / f"{engine}.json")]) == 0
        metrics[engine] = json.loads((tmp_path / f"{engine}.json").read_text())
    assert metrics["onnxruntime"]["engine"] == "onnxruntime" and metrics["torch"]["engine"] == "torch"
    for key in ("micro_f1", "macro_f1", "hamming_accuracy", "emr"):
        assert metrics["onnxruntime"][key] == pytest.approx(metrics["torch"][key], abs=1e-9)
