"""One rule for the command line: expected bad input gets one line naming the file and the reason (exit 2);
a bug keeps its traceback."""

from pathlib import Path

import pytest
import yaml

from peakmixer.cli import main
from peakmixer.data import toy_dataset
from peakmixer.train import load_config, train

TINY = {
    "model": {"width": 8, "blocks": 2, "mixer_layers": 1, "input_length": 128, "hidden": 16},
    "optim": {"epochs": 1, "batch_size": 16},
    "precision": "fp32",
    "progress": False,
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A good dataset and checkpoint, and the bad inputs users hand in."""
    root = tmp_path_factory.mktemp("bad")
    data = toy_dataset(n=64, length=128, n_classes=4, seed=0).save(root / "toy.npz")
    cfg = {**TINY, "data": {"path": str(data)}, "out_dir": str(root / "run")}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    train(load_config(root / "cfg.yaml"))
    cfg["out_dir"] = str(root / "other")  # the bad configs below would otherwise meet the finished run
    best = root / "run" / "best.pt"
    truncated = root / "truncated.pt"
    truncated.write_bytes(best.read_bytes()[:1000])
    foreign = root / "foreign.pt"
    foreign.write_bytes(b"this is not a checkpoint at all\n")
    damaged = root / "damaged.npz"
    damaged.write_bytes(data.read_bytes()[:3000])
    typo = root / "typo.yaml"
    typo.write_text(yaml.safe_dump({**cfg, "optim": {"epochs": 1, "lerning_rate": 0.1}}))
    bad_split = root / "split.yaml"
    bad_split.write_text(yaml.safe_dump({**cfg, "data": {"path": str(data), "train_split": "tset"}}))
    cuda = root / "cuda.yaml"
    cuda.write_text(yaml.safe_dump({**cfg, "device": "cuda"}))
    nodata = root / "nodata.yaml"
    nodata.write_text(yaml.safe_dump({**cfg, "data": {"path": str(root / "missing.npz")}}))
    return locals()


CASES = {
    "train: missing config": (["train", "--config", "{root}/none.yaml"], "none.yaml: config file not found"),
    "train: unknown key": (["train", "--config", "{typo}"], "unknown config key 'optim.lerning_rate'"),
    "train: unknown split": (["train", "--config", "{bad_split}"], "toy.npz: no split 'tset'"),
    "train: missing data": (["train", "--config", "{nodata}"], "missing.npz: no such dataset file"),
    "train: resume without last.pt": (
        ["train", "--config", "{cuda}", "--resume"],
        "nothing to resume (no last.pt)",
    ),
    "train: over a finished run": (["train", "--config", "{root}/cfg.yaml"], "run holds a run already"),
    "train: damaged data": (
        ["train", "--config", "{typo}", "--set", "optim={{}}", "--set", "data.path={damaged}"],
        "damaged.npz: ",
    ),
    "evaluate: missing checkpoint": (
        ["evaluate", "--checkpoint", "{root}/no.pt"],
        "no.pt: checkpoint not found",
    ),
    "evaluate: truncated checkpoint": (
        ["evaluate", "--checkpoint", "{truncated}"],
        "truncated.pt: not a readable",
    ),
    "evaluate: foreign file": (["evaluate", "--checkpoint", "{foreign}"], "foreign.pt: not a readable"),
    "evaluate: a dataset as checkpoint": (["evaluate", "--checkpoint", "{data}"], "toy.npz: not a"),
    "evaluate: unknown split": (["evaluate", "--checkpoint", "{best}", "--split", "tset"], "no split 'tset'"),
    "evaluate: damaged data": (["evaluate", "--checkpoint", "{best}", "--data", "{damaged}"], "damaged.npz"),
    "export: truncated checkpoint": (
        ["export", "--checkpoint", "{truncated}", "--out", "{root}/x.pt"],
        "truncated.pt: not a readable",
    ),
    "explain: foreign checkpoint": (["explain", "{data}", "--checkpoint", "{foreign}"], "foreign.pt"),
    "sweep: missing config": (["sweep", "--config", "{root}/none.yaml"], "none.yaml: config file not found"),
    "notebooks: unknown notebook": (["notebooks", "--only", "99_x"], "no notebook ['99_x']"),
    "data synth: bad knob": (
        ["data", "synth", "--kind", "synth-ir17", "--n", "10", "--out", "{root}/s.npz", "--knob", "nope=1"],
        "--knob 'nope=1'",
    ),
    "ship: unknown study": (["ship", "--study", "nope", "--run", "a", "--name", "b"], "no study 'nope'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_with_the_file_and_the_reason(case, files, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    argv, expected = CASES[case]
    argv = [a.format(**files) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err, err


def test_cuda_asked_for_on_a_machine_without_it(files, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["train", "--config", str(files["cuda"])]) == 2
    assert "device 'cuda' requested but CUDA is not available here" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("peakmixer.train.evaluate_split", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main(["evaluate", "--checkpoint", str(files["best"])])
