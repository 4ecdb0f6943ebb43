"""One rule for the command line: expected bad input gets one line naming the file and the reason (exit 2);
a bug keeps its traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peakmixer.cli import main
from peakmixer.data.dataset import load, toy_dataset
from peakmixer.data.splits import split_dataset
from peakmixer.train.config import load_config
from peakmixer.train.loop import train

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
    broken = root / "broken.yaml"
    broken.write_text("optim:\n  lr: [0.1\n")
    folder = root / "folder"
    (folder / "inside").mkdir(parents=True)
    empty = root / "empty"
    empty.mkdir()
    labels = root / "labels.csv"
    labels.write_text("label\n" + "a\n" * 60)
    resplit = split_dataset(load(data), [0.7, 0.15, 0.15], seed=7).save(root / "resplit.npz")
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
    "train: a folder as config": (["train", "--config", "{folder}"], "folder: is a folder, not a YAML"),
    "train: broken YAML": (["train", "--config", "{broken}"], "broken.yaml: not valid YAML at line 3"),
    "train: broken YAML in --set": (
        ["train", "--config", "{typo}", "--set", "optim.lr=[1"],
        "not valid YAML",
    ),
    "data import: missing file": (
        ["data", "import", "{root}/none.csv", "--out", "{root}/n.npz"],
        "none.csv: no such file or folder",
    ),
    "data import: missing file, with a labels table": (
        ["data", "import", "{root}/none.csv", "--labels-csv", "{labels}", "--out", "{root}/n.npz"],
        "none.csv: no such file or folder",
    ),
    "data import: empty folder": (
        ["data", "import", "{empty}", "--out", "{root}/n.npz"],
        "empty: empty folder",
    ),
    "data import: over a dataset": (["data", "import", "{data}", "--out", "{data}"], "exists; --overwrite"),
    "data import: a folder as --out": (
        ["data", "import", "{data}", "--out", "{folder}/"],
        "folder: is a folder",
    ),
    "data split: over its splits": (["data", "split", "{data}"], "toy.npz: holds splits already"),
    "data split: over another file": (["data", "split", "{data}", "--out", "{typo}"], "typo.yaml: exists"),
    "data info: a folder": (["data", "info", "{folder}/"], "folder: is a folder, not a dataset file"),
    "evaluate: a folder without spectra as data": (
        ["evaluate", "--checkpoint", "{best}", "--data", "{folder}"],
        "folder: empty folder",
    ),
    "evaluate: a folder named as a dataset": (
        ["evaluate", "--checkpoint", "{best}", "--data", "{folder}/x.npz"],
        "x.npz: no such dataset file",
    ),
    "evaluate: a split re-made after training": (
        ["evaluate", "--checkpoint", "{best}", "--data", "{resplit}"],
        "best.pt was trained or validated on (re-split after training?)",
    ),
    "explain: empty folder": (["explain", "{empty}", "--checkpoint", "{best}"], "empty: empty folder"),
    "explain: a split re-made after training": (
        ["explain", "{resplit}", "--split", "test", "--checkpoint", "{best}", "--out", "{root}/ex"],
        "--allow-changed-splits",
    ),
}


def written(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_with_the_file_and_the_reason(case, files, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    argv, expected = CASES[case]
    argv = [a.format(**files) for a in argv]
    before = written(files["root"])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err, err
    after = written(files["root"])
    assert {k: after.get(k) for k in before} == before  # nothing already written changed


def test_cuda_asked_for_on_a_machine_without_it(files, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["train", "--config", str(files["cuda"])]) == 2
    assert "device 'cuda' requested but CUDA is not available here" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("peakmixer.train.evaluate.compute_metrics", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main(["evaluate", "--checkpoint", str(files["best"])])


def test_ctrl_c_stops_a_training_with_one_line_saying_where_last_pt_is(files, tmp_path, capsys, monkeypatch):
    from peakmixer.train import loop as training

    end_epoch = training._end_epoch

    def then_ctrl_c(s):  # Ctrl-C right after the first epoch's checkpoint
        end_epoch(s)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_end_epoch", then_ctrl_c)
    argv = ["train", "--config", str(files["cuda"]), "--set", "device=cpu", "--set", "optim.epochs=3"]
    argv += ["--set", f"out_dir={tmp_path / 'stopped'}"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    last = tmp_path / "stopped" / "last.pt"
    assert err == f"interrupted: {last} holds the run as last saved: --resume continues it"
    monkeypatch.setattr(training, "_end_epoch", end_epoch)
    assert main([*argv, "--resume"]) == 0  # and it does


def test_a_torch_failure_on_a_good_checkpoint_is_not_called_bad_input(files, monkeypatch):
    # only what torch says of a damaged or foreign file is "not a readable checkpoint"; anything else is a
    # bug (a torch regression, say) and keeps its traceback
    def regression(*args, **kwargs):
        raise RuntimeError("an internal torch failure")

    monkeypatch.setattr("torch.load", regression)
    with pytest.raises(RuntimeError, match="internal torch failure"):
        main(["evaluate", "--checkpoint", str(files["best"])])


def test_installed_outside_the_checkout_it_refuses_in_one_line_or_works_where_told(tmp_path):
    """A copy of the package outside any checkout, as `pip install .` leaves it: the commands that use the
    checkout's files refuse in one line, and work once PEAKMIXER_REPO names the checkout."""
    import os
    import shutil
    import subprocess
    import sys

    from peakmixer.paths import REPO_ROOT

    site = tmp_path / "site-packages"
    shutil.copytree(REPO_ROOT / "lib" / "peakmixer", site / "peakmixer")
    env = {k: v for k, v in os.environ.items() if k != "PEAKMIXER_REPO"} | {"PYTHONPATH": str(site)}
    argv = [sys.executable, "-m", "peakmixer", "results", "--check"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "PEAKMIXER_REPO" in done.stderr and "Traceback" not in done.stderr
    env["PEAKMIXER_REPO"] = str(REPO_ROOT)
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "results section agrees with the store" in done.stdout, done.stderr


def test_a_missing_file_inside_the_code_is_a_bug_not_bad_input(files, monkeypatch):
    # only a file the user named (MissingFile) is one line; a FileNotFoundError from inside keeps a traceback
    def internal(*args, **kwargs):
        raise FileNotFoundError("an internal resource is gone")

    monkeypatch.setattr("peakmixer.train.evaluate.compute_metrics", internal)
    with pytest.raises(FileNotFoundError, match="internal resource"):
        main(["evaluate", "--checkpoint", str(files["best"])])


def test_help_lists_every_command_without_importing_torch_or_rdkit():
    code = (
        "import sys\nfrom peakmixer.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'rdkit', 'pandas', 'matplotlib'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]"), done.stdout[-300:]
    for name in ("train", "evaluate", "data", "sweep", "results", "explain", "calibrate", "sim2real"):
        assert re.search(rf"^\s+{name}\s", done.stdout, flags=re.M), name
    # the command asked for is built in full: its options parse and its own help lists them
    assert (
        "--fractions"
        in subprocess.run(
            [sys.executable, "-m", "peakmixer", "data", "split", "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
