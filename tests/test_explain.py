"""`python -m peakmixer explain`: a model's predictions and Grad-CAM for a user's own files."""

import json

import pandas as pd

from peakmixer.cli import main


def test_explain_keeps_going_past_refused_files_and_says_so(ir_checkpoint, shared_data, tmp_path):
    nist = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:3]
    bad = [shared_data / "jcamp_edge_cases" / "1HQuinine.jdx", tmp_path / "missing.jdx"]
    bad[1].write_text("not a spectrum")
    out = tmp_path / "explained"
    args = ["explain", *map(str, nist + bad), "--checkpoint", str(ir_checkpoint), "--out", str(out)]
    assert main(args) == 1  # something was refused, the rest explained
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["spectrum"]) == sorted(p.name for p in nist)
    for row in summary.itertuples(index=False):
        assert (out / row.figure).stat().st_size > 5_000
        side = json.loads((out / row.figure).with_suffix(".json").read_text())
        assert side["spectrum"] == row.spectrum and len(side["probabilities"]) == 17
        assert side["explained_classes"] and 0.8 <= side["coverage"] <= 1
    report = json.loads((out / "report.json").read_text())
    refused = {r["source"]: r["reason"] for r in report["refused"]}
    assert set(refused) == {"1HQuinine.jdx", "missing.jdx"} and all(refused.values())


def test_explain_exit_status_when_all_or_nothing_is_explained(ir_checkpoint, shared_data, tmp_path):
    one = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[0]
    assert main(["explain", str(one), "--checkpoint", str(ir_checkpoint), "--out", str(tmp_path / "a")]) == 0
    junk = tmp_path / "junk.csv"
    junk.write_text("a;b\n1;2\n")
    assert main(["explain", str(junk), "--checkpoint", str(ir_checkpoint), "--out", str(tmp_path / "b")]) == 2


def test_the_shipped_model_explains_real_ir_files_by_default(shared_data, tmp_path):
    nist = sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:4]
    edge = [shared_data / "jcamp_edge_cases" / n for n in ("1HQuinine.jdx", "sqzdec1.jdx", "compound.jdx")]
    out = tmp_path / "explained"
    code = main(["explain", *map(str, nist + edge), "--out", str(out)])  # no --checkpoint: the shipped one
    report = json.loads((out / "report.json").read_text())
    assert report["checkpoint"].endswith("models/synth-ir17_ip.pt")
    summary = pd.read_csv(out / "summary.csv")
    assert set(p.name for p in nist) <= set(summary["spectrum"])  # every real IR file is explained
    assert code == (1 if report["refused"] else 0)  # the exit status says whether anything was refused
    assert all(r["reason"] for r in report["refused"])
    assert "1HQuinine.jdx" in {r["source"] for r in report["refused"]}  # an NMR file, named with its reason


def test_explain_takes_its_probabilities_from_onnx_runtime_when_asked(ir_checkpoint, shared_data, tmp_path):
    nist = [str(p) for p in sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:1]]
    tables = {}
    for engine in ("torch", "onnxruntime"):
        out = tmp_path / engine
        args = ["explain", *nist, "--checkpoint", str(ir_checkpoint), "--out", str(out), "--engine", engine]
        assert main(args) == 0
        tables[engine] = pd.read_csv(out / "summary.csv")
        side = json.loads((out / tables[engine]["figure"][0]).with_suffix(".json").read_text())
        assert side["parameters"]["engine"] == engine
    t, o = tables["torch"], tables["onnxruntime"]
    assert (t["predicted"].fillna("") == o["predicted"].fillna("")).all()
    assert (t["top_probability"] - o["top_probability"]).abs().max() <= 1e-5
