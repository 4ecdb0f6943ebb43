"""The run identity behind the results store: a stored row is reused exactly when it computes the same.

The id (`train.config_fingerprint`) covers the config, the data, the device type, the resolved precision, the
model's code (`models.code_fingerprint`), `TRAINING_PATH_VERSION` and the identity of a pre-trained start.
"""

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from peakmixer import models
from peakmixer.config import ConfigError, from_dict
from peakmixer.data.dataset import data_identity, file_sha256, load, toy_dataset
from peakmixer.models import build_model, code_fingerprint
from peakmixer.provenance import source_digest, stable_ast_dump
from peakmixer.synth import benchmarks
from peakmixer.train.checkpoint import export_model, load_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.identity import TRAINING_PATH_VERSION, init_identity, planned_config_id
from peakmixer.train.loop import train

GOLDEN = Path(__file__).with_name("golden") / "training_path.json"
# The interpretable path draws Bernoulli / multinomial samples against the model's probabilities, and another
# kind of CPU (other kernels, other summation order) moves a probability by ~1e-6, enough to flip one draw now
# and then: on an AMD EPYC, against the committed reference, one IP run differed by 2.6e-4 while the runs
# without sampling agreed to 5e-6. A 1% change of the IP loss weight moves the IP runs by 6e-3, so this
# tolerance still catches a change of the path's arithmetic.
SAMPLED_RTOL = 2e-3
# The runs without sampling still depend on the CPU's kernels: on an AMD EPYC without AVX512-BF16 the
# multiclass reference differed by 1.6e-4 (relative, epoch 3) from the one made on another CPU. 1e-3 holds
# across the CPUs seen (Intel with AMX, AMD with and without AVX512-BF16); run identities and data bytes stay
# exact (below).
KERNEL_RTOL = 1e-3
TINY = {
    "model": {
        "width": 8,
        "blocks": 2,
        "mixer_layers": 1,
        "input_length": 128,
        "hidden": 16,
        "mlp_hidden": 16,
    },
    "optim": {"epochs": 3, "batch_size": 8, "lr": 0.003, "patience": 100},
    "precision": "fp32",
    "progress": False,
}


def tiny_config(tmp_path: Path, task: str = "multilabel", **changes) -> TrainConfig:
    path = tmp_path / f"toy-{task}.npz"
    if not path.exists():
        toy_dataset(n=96, length=128, n_classes=4, task=task, seed=0).save(path)
    data = {**TINY, "data": {"path": str(path)}, "out_dir": str(tmp_path / f"run-{task}")}
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        data[section] = {**data.get(section, {}), leaf: value} if leaf else value
    return from_dict(TrainConfig, data)


# --- the training path: a reference run guards TRAINING_PATH_VERSION ----------------------------------


def reference_runs(tmp_path: Path) -> dict[str, list[float]]:
    """Two short fp32 runs on one thread through the whole training path (data preparation, loss,
    optimiser, schedule, validation, best-model selection, test metrics), reduced to continuous numbers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        ip = {"ip": {"mode": "trainable", "channels": 12}}
        for name, task, changes in (
            ("multilabel", "multilabel", {"data__normalize": "standard"}),
            ("multiclass", "multiclass", {"data__val_fraction": 0.25}),
            # the interpretable path's loss, sampling and pathway logs are training path too
            ("multilabel-ip", "multilabel", {"model": TINY["model"] | ip}),
            ("multiclass-ip", "multiclass", {"model": TINY["model"] | ip}),
        ):
            cfg = tiny_config(tmp_path, task, **changes)
            cfg.out_dir = str(tmp_path / f"run-{name}")
            summary = train(cfg)
            best = load_checkpoint(Path(cfg.out_dir) / "best.pt")["model"]
            out[name] = [h["train_loss"] for h in summary["history"]] + [
                summary["best_val"],
                float(sum((v.double() ** 2).sum() for v in best.values() if v.is_floating_point())),
                summary["test"]["macro_f1"],
                *[summary["history"][-1].get(f"val_pred_{k}", 0.0) for k in (1, 2, 3)],
            ]
        return out
    finally:
        torch.set_num_threads(threads)


def test_training_path_version_guards_a_reference_run(tmp_path):
    got = reference_runs(tmp_path)
    if os.environ.get("PEAKMIXER_REGENERATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"version": TRAINING_PATH_VERSION, "runs": got}, indent=1) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    golden = json.loads(GOLDEN.read_text())
    assert golden["version"] == TRAINING_PATH_VERSION, (
        "TRAINING_PATH_VERSION changed: regenerate the reference with PEAKMIXER_REGENERATE_GOLDEN=1"
    )
    assert set(golden["runs"]) == set(got)
    for task, values in golden["runs"].items():
        np.testing.assert_allclose(
            got[task],
            values,
            rtol=SAMPLED_RTOL if task.endswith("-ip") else KERNEL_RTOL,
            err_msg=f"the training path computes something else than at version {TRAINING_PATH_VERSION} "
            f"({task}): bump TRAINING_PATH_VERSION in peakmixer/train/identity.py (every stored row becomes "
            "stale and the full sweep must be rerun) and regenerate the reference",
        )


# --- the model's code --------------------------------------------------------------------------------


def load_module(path: Path, source: str):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"peakmixer.probe_{path.stem}", path)  # hashed as ours
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_class_source_counts_code_not_comments_or_docstrings(tmp_path):
    base = (
        "import torch\n"
        "class Probe(torch.nn.Module):\n"
        '    """Doubles."""\n'
        "    def forward(self, x):\n"
        "        return 2 * x  # why\n"
    )
    variants = {
        "same": base.replace("# why", "# another comment").replace("Doubles.", "Twice the input."),
        "other": base.replace("2 * x", "3 * x"),
    }
    digests = {}
    for name, source in {"base": base, **variants}.items():
        probe = load_module(tmp_path / f"{name}.py", source).Probe
        digests[name] = models._class_digest(probe).split(":", 1)[1]
    assert digests["same"] == digests["base"] and digests["other"] != digests["base"]


def _model_class_sources() -> dict[str, str]:
    import inspect

    classes = [c for c in vars(models).values() if isinstance(c, type) and c.__module__ == models.__name__]
    return {c.__qualname__: inspect.getsource(c) for c in classes}


def _other_pythons() -> list[str]:
    """Other CPython 3.10-3.13 interpreters on this machine (pyenv's or on PATH); none in CI."""
    found = {shutil.which(f"python3.{minor}") for minor in (10, 11, 12, 13)}
    found |= {str(p) for p in Path.home().glob(".pyenv/versions/3.1[0-3].*/bin/python3")}
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    out = {}
    for exe in sorted(f for f in found if f):
        done = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode == 0 and done.stdout.strip() not in (mine, *out):
            out[done.stdout.strip()] = exe
    return list(out.values())


def test_the_code_digest_is_python_3_11s_ast_dump_text():
    # The committed store's ids were made on Python 3.11: the stable text must be 3.11's ast.dump text.
    if sys.version_info[:2] != (3, 11):
        pytest.skip("ast.dump's own text is 3.11's only on Python 3.11")
    for name, source in _model_class_sources().items():
        tree = ast.parse(textwrap.dedent(source))
        assert stable_ast_dump(tree) == ast.dump(tree), name


def test_the_code_digest_is_the_same_on_every_python():
    # A user on another Python must find the same run ids, or every stored row would look stale.
    others = _other_pythons()
    if not others:
        pytest.skip("no other Python 3.10-3.13 on this machine")
    sources = _model_class_sources()
    mine = {name: source_digest(src) for name, src in sources.items()}
    lib = str(Path(models.__file__).parents[1])
    script = (
        "import json, sys\nsys.path.insert(0, sys.argv[1])\nfrom peakmixer.provenance import source_digest\n"
        "print(json.dumps({k: source_digest(v) for k, v in json.load(sys.stdin).items()}))"
    )
    for exe in others:
        done = subprocess.run([exe, "-c", script, lib], input=json.dumps(sources), capture_output=True,
                              text=True, check=True)  # fmt: skip
        assert json.loads(done.stdout) == mine, exe


def test_a_changed_mixer_changes_only_its_own_models(monkeypatch):
    kw = {"n_classes": 4, "width": 8, "blocks": 2, "input_length": 128, "hidden": 16, "mixer_layers": 1}
    built = {m: build_model("respeak", m, **kw) for m in ("none", "mlp", "mlpmixer", "transformer")}
    before = {m: code_fingerprint(model) for m, model in built.items()}
    assert len(set(before.values())) == 4
    digest = models._class_digest
    monkeypatch.setattr(
        models, "_class_digest", lambda c: digest(c) + ("edited" if c is models.MLPMixer else "")
    )
    after = {m: code_fingerprint(model) for m, model in built.items()}
    assert after["mlpmixer"] != before["mlpmixer"]
    assert {m: after[m] for m in ("none", "mlp", "transformer")} == {
        m: before[m] for m in ("none", "mlp", "transformer")
    }
    # the module tree counts as well: another width is another model
    assert code_fingerprint(build_model("respeak", "none", **kw | {"width": 16})) != before["none"]


# --- config, device type, precision, data, pre-training ------------------------------------------------


def test_id_covers_precision_device_type_config_and_data(tmp_path):
    cfg = tiny_config(tmp_path)
    ds = toy_dataset(n=96, length=128, n_classes=4, seed=0)
    base = planned_config_id(cfg, ds, device_type="cpu", precision="fp32")
    assert planned_config_id(cfg, ds, device_type="cpu", precision="bf16") != base
    assert planned_config_id(cfg, ds, device_type="cuda", precision="fp32") != base
    other = toy_dataset(n=96, length=128, n_classes=4, seed=1)
    cfg.data.path = str(other.save(tmp_path / "other.npz"))
    assert planned_config_id(cfg, other, device_type="cpu", precision="fp32") != base
    cfg.data.path = str(tmp_path / "toy-multilabel.npz")
    cfg.model.hidden = 32
    assert planned_config_id(cfg, ds, device_type="cpu", precision="fp32") != base
    cfg.model.hidden = 16
    # where a run and its data are and how it is watched do not change what it computes
    moved = tmp_path / "moved" / "toy.npz"
    moved.parent.mkdir()
    moved.write_bytes(Path(cfg.data.path).read_bytes())
    cfg.out_dir, cfg.progress, cfg.eval_batch_size = str(tmp_path / "elsewhere"), True, 7
    cfg.data.path = str(moved)
    assert planned_config_id(cfg, ds, device_type="cpu", precision="fp32") == base
    # the id training records is the planned one
    assert train(cfg)["config_id"] == base


def test_a_generated_benchmark_counts_by_its_recipe_not_its_last_bits(tmp_path):
    from peakmixer.synth.benchmarks import make_synth

    ds = make_synth("synth-bac30", 400, 0)
    a = ds.save(tmp_path / "a.npz")
    ds.X[0, 0] = np.nextafter(ds.X[0, 0], np.float32(2))  # one ulp: another CPU's vectorised exp
    b = ds.save(tmp_path / "b.npz")
    assert file_sha256(a) != file_sha256(b)
    assert data_identity(load(a), a) == data_identity(load(b), b)
    assert data_identity(make_synth("synth-bac30", 400, 1)) != data_identity(load(a), a)
    assert data_identity(make_synth("synth-bac30", 400, 0, separation=2.0)) != data_identity(load(a), a)
    toy = toy_dataset(n=8, length=32)  # anything else counts by its bytes
    assert data_identity(toy, toy.save(tmp_path / "toy.npz")) == file_sha256(tmp_path / "toy.npz")


def test_resume_refuses_a_run_made_with_another_precision(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, max_steps=3)
    assert train(cfg)["stopped"]
    # bf16 as it runs where it is native (elsewhere it runs in fp32, the same run); refused before a step
    monkeypatch.setattr("peakmixer.train.device.cpu_has_native_bf16", lambda *a, **k: True)
    cfg.precision = "bf16"
    with pytest.raises(ConfigError, match="other settings, code, data, device type or precision"):
        train(cfg, resume=True)


def test_a_fine_tuned_run_is_identified_by_its_pre_training(tmp_path):
    cfg = tiny_config(tmp_path, "multiclass")
    pre = train(cfg)
    tuned = tiny_config(tmp_path, "multiclass", init_from=str(Path(cfg.out_dir) / "best.pt"))
    tuned.out_dir = str(tmp_path / "tuned")
    first = train(tuned)
    assert first["init_id"] == pre["config_id"] + ":best"
    # another checkpoint of the same pre-training is another start: the last one, or the shipped fp16 copy
    assert init_identity(Path(cfg.out_dir) / "last.pt").startswith(pre["config_id"] + ":last:")
    shipped = export_model(Path(cfg.out_dir) / "best.pt", tmp_path / "shipped.pt")
    assert init_identity(shipped) == pre["config_id"] + ":export"
    cfg.optim.lr = 0.001  # another pre-training, written to the same place
    assert train(cfg)["config_id"] != pre["config_id"]
    tuned.out_dir = str(tmp_path / "tuned-again")
    assert train(tuned)["config_id"] != first["config_id"]


# --- the attribution scores: SCORES_VERSION guarded the same way ----------------------------------------

SCORES_GOLDEN = Path(__file__).with_name("golden") / "scores.json"


def test_scores_version_guards_a_reference_scoring():
    from peakmixer.attribution.gradcam import ScoreSettings
    from peakmixer.attribution.run_scores import SCORES_VERSION, RunScoring, score_run
    from peakmixer.ip import attach_ip

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        kw = {"width": 6, "blocks": 2, "input_length": 64, "hidden": 16, "mixer_layers": 1}
        model = attach_ip(
            build_model("respeak", "mlpmixer", n_classes=4, **kw), mode="trainable", task="multilabel"
        )
        ds = toy_dataset(n=12, length=64, n_classes=4, seed=3)
        x = torch.from_numpy(ds.X).unsqueeze(1)
        y = torch.from_numpy(ds.y.astype("float32"))
        scoring = RunScoring(n_spectra=8, score=ScoreSettings(n_perturb_samples=3, sensitivity_samples=3))
        got = score_run(model.eval(), x, y, ds.masks, "multilabel", scoring)
    finally:
        torch.set_num_threads(threads)
    if os.environ.get("PEAKMIXER_REGENERATE_GOLDEN"):
        SCORES_GOLDEN.write_text(json.dumps({"version": SCORES_VERSION, "scores": got}, indent=1) + "\n")
        pytest.skip(f"wrote {SCORES_GOLDEN}")
    golden = json.loads(SCORES_GOLDEN.read_text())
    assert golden["version"] == SCORES_VERSION, "SCORES_VERSION changed: regenerate the reference scoring"
    assert set(golden["scores"]) == set(got)
    # continuous scores only: a pointing game or a rank order may flip on another CPU's last bits
    for key, value in golden["scores"].items():
        if key.startswith(("pointing_game", "rank_accuracy")):
            continue
        np.testing.assert_allclose(
            got[key],
            value,
            rtol=0.02,  # infidelity subtracts nearly equal outputs: loose, yet far tighter than a code change
            atol=1e-12,
            err_msg=f"{key}: the scores are computed otherwise than at version {SCORES_VERSION}: bump "
            "SCORES_VERSION in peakmixer/attribution/gradcam.py (the sweep then scores stored runs again) "
            "and regenerate",
        )


# --- the synthetic draws: a stored run counts its data by recipe, so a recipe must keep its spectra -----

SYNTH_GOLDEN = Path(__file__).with_name("golden") / "synth_draws.json"
DRAWS = [(kind, v) for kind, versions in benchmarks.VERSIONS.items() for v in versions]  # every makeable one


def _draw(kind: str, version: str) -> dict:
    import hashlib

    from peakmixer.synth.benchmarks import make_synth

    # synth-ir17: 1100 rows, so that the realistic versions' second row block (own stream) is pinned too
    ds = make_synth(kind, 400 if kind == "synth-bac30" else 1100, 0, version)
    rows = [0, 1, 2, 3, len(ds) - 2, len(ds) - 1]
    return {
        "identity": data_identity(ds),
        "masks": hashlib.sha256(np.ascontiguousarray(ds.masks)).hexdigest() if ds.masks is not None else None,
        "y": ds.y[rows].tolist(),
        "X": np.round(ds.X[rows, ::16].astype(np.float64), 6).tolist(),
        "row_sums": np.round(ds.X.sum(axis=1, dtype=np.float64), 3).tolist(),
    }


def test_each_generator_version_still_draws_what_it_drew():
    """`data_identity` names a synthetic set by (kind, n, seed, version, knobs): a change to a version's draw
    (a new random stream, a reordered computation) would make stored runs look like runs on the new data."""
    got = {f"{kind} v{version}": _draw(kind, version) for kind, version in DRAWS}
    if os.environ.get("PEAKMIXER_REGENERATE_GOLDEN"):
        SYNTH_GOLDEN.write_text(json.dumps(got) + "\n")
    golden = json.loads(SYNTH_GOLDEN.read_text())
    for key, draw in got.items():
        # The recipe (knobs included) names the data of every stored run: it may not move either.
        assert draw["identity"] == golden[key]["identity"], f"{key}: other recipe: bump the generator version"
        assert draw["masks"] == golden[key]["masks"], f"{key}: other masks: bump the generator version"
        assert draw["y"] == golden[key]["y"], f"{key}: other labels: bump the generator version"
        # Not bit-exact: vectorised float32 exp differs in the last bit between CPU instruction sets.
        message = f"{key}: other spectra: bump the generator version"
        np.testing.assert_allclose(draw["X"], golden[key]["X"], atol=1e-4, err_msg=message)
        np.testing.assert_allclose(draw["row_sums"], golden[key]["row_sums"], atol=0.05, err_msg=message)
