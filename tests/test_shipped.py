"""Shipping a stored run: a small model file, and a card whose numbers come from the store and a live run."""

import json

import pytest

from peakmixer.report.shipped import RealSet, refresh_card, ship
from peakmixer.studies.results import load_study
from peakmixer.studies.store import read_results, replace_row
from peakmixer.studies.sweep import run_sweep
from peakmixer.train.checkpoint import load_checkpoint


def test_ship_exports_a_stored_run_with_its_card(tmp_path, shared_data):
    study = {
        "datasets": [{"name": "synth-ir17", "kind": "synth-ir17", "n": 300}],
        "widths": [8],
        "blocks": 6,
        "mixers": ["mlpmixer"],
        "mixer_layers": [1],
        "ip_modes": ["trainable"],
        "seeds": [0, 1],
        "train": {
            "model": {"hidden": 16, "ip": {"channels": 34}},
            "optim": {"epochs": 1, "batch_size": 32},
            "precision": "fp32",
        },
        "out_dir": str(tmp_path / "runs"),
        "results": str(tmp_path / "store" / "tiny.csv"),
        "data_dir": str(tmp_path / "data"),
    }
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.yaml").write_text(json.dumps(study))
    run_sweep(load_study("tiny", studies_dir=tmp_path / "studies"), progress=False)
    nist = tmp_path / "nist"
    nist.mkdir()
    for f in sorted((shared_data / "nist_ir_jcamp").glob("*.jdx"))[:6]:
        (nist / f.name).write_bytes(f.read_bytes())
    (nist / "molecules.csv").write_bytes((shared_data / "nist_ir_jcamp" / "molecules.csv").read_bytes())
    out = ship(
        "tiny",
        "synth-ir17/w8x6-mlpmixer1-iptrainable/seed0",
        "tiny_ip",
        real=[RealSet.parse(f"nist={nist}")],
        studies_dir=tmp_path / "studies",
        models_dir=tmp_path / "models",
    )
    assert out.stat().st_size < 5e6 and load_checkpoint(out)["config_id"]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["test"]["seeds"] == [0, 1] and 0 <= card["test"]["this_run"] <= 1
    (real,) = card["real"]
    assert real["spectra"] == 6 and set(real["model"]) == set(real["prevalence_baseline"])
    text = out.with_suffix(".md").read_text()
    assert (
        "prevalence baseline" in text and "synthetic" in text and f"{real['model']['micro_f1']:.3f}" in text
    )
    # beside the .pt, its ONNX files, each checked when written, and the card says how they did
    for suffix, check in ((".onnx", "max_abs_logit_diff"), (".int8.onnx", "change")):
        onnx = out.with_suffix(suffix)
        kind = "int8" if "int8" in suffix else "fp32"
        assert onnx.stat().st_size < 5e6 and card["onnx"][kind]["file"] == onnx.name
        assert card["onnx"][kind][check] is not None and f"`{onnx.name}`" in text
    assert abs(card["onnx"]["int8"]["change"]) <= card["onnx"]["int8"]["bound"] == 0.005
    # the card's numbers are its stored row's: a card that disagrees with the store is found
    stored = read_results(tmp_path / "store" / "tiny.csv").set_index("run_id").loc[card["model"]]
    assert card["stored"] and card["test"]["this_run"] == pytest.approx(stored["micro_f1"])
    assert not refresh_card(out.with_suffix(".json"), write=False, studies_dir=tmp_path / "studies")
    tampered = card | {"test": card["test"] | {"this_run": 0.5}}
    out.with_suffix(".json").write_text(json.dumps(tampered))
    assert refresh_card(out.with_suffix(".json"), write=False, studies_dir=tmp_path / "studies")
    # rewritten from the store
    assert refresh_card(out.with_suffix(".json"), studies_dir=tmp_path / "studies")
    assert json.loads(out.with_suffix(".json").read_text())["test"] == card["test"]
    # the run made again (another time): the card no longer claims the store's numbers for these weights
    replace_row(tmp_path / "store" / "tiny.csv", card["model"], {"finished_at": "2030-01-01T00:00:00Z"})
    assert refresh_card(out.with_suffix(".json"), studies_dir=tmp_path / "studies")
    assert "no longer holds the run these weights come from" in out.with_suffix(".md").read_text()
    with pytest.raises(ValueError, match="no valid row"):
        ship(
            "tiny", "synth-ir17/nope/seed0", "x", studies_dir=tmp_path / "studies", models_dir=tmp_path / "m"
        )
