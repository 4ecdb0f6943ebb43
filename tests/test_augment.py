"""Training-time augmentation (`train.augment`): each transform, reproducible draws, and the run identity."""

from dataclasses import replace

import pytest
import torch

from peakmixer.train.augment import augment_batch, step_generator
from peakmixer.train.config import AugmentConfig, TrainConfig
from peakmixer.train.identity import config_fingerprint, settings_digest


def _batch() -> torch.Tensor:
    """Four spectra of 200 points: a narrow band at point 100 on a flat floor, range 1."""
    x = torch.zeros(4, 1, 200)
    x[:, 0, 98:103] = torch.tensor([0.25, 0.75, 1.0, 0.75, 0.25])
    return x


def _apply(**knobs) -> tuple[torch.Tensor, torch.Tensor]:
    x = _batch()
    return x, augment_batch(x, AugmentConfig(**knobs), step_generator(0, 7, torch.device("cpu")))


def test_off_changes_nothing_and_draws_repeat_for_a_step():
    x = _batch()
    assert not AugmentConfig().active and AugmentConfig(noise=0.01).active
    assert torch.equal(augment_batch(x, AugmentConfig(), step_generator(0, 0, x.device)), x)
    cfg = AugmentConfig(noise=0.05, shift=3, broaden=2, scale=0.2, baseline=0.1, spikes=0.5)
    a = augment_batch(x, cfg, step_generator(3, 11, x.device))
    b = augment_batch(x, cfg, step_generator(3, 11, x.device))
    c = augment_batch(x, cfg, step_generator(3, 12, x.device))
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(x, _batch())  # input untouched


def test_each_transform_does_what_it_says():
    x, shifted = _apply(shift=4)
    moved = shifted[:, 0].argmax(1) - 100
    assert (moved.abs() <= 4).all() and moved.unique().numel() > 1  # each spectrum its own shift
    x, wide = _apply(broaden=3)
    assert torch.allclose(wide.sum(-1), x.sum(-1), rtol=1e-4) and (wide.amax(-1) < 1).all()  # area kept
    x, scaled = _apply(scale=0.3)
    ratio = scaled.amax(-1) / x.amax(-1)
    assert ((ratio >= 0.7) & (ratio <= 1.3)).all() and torch.allclose(scaled / ratio[..., None], x)
    x, noisy = _apply(noise=0.1)
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.15)
    x, drifted = _apply(baseline=0.3)
    drift = (drifted - x)[:, 0]
    assert drift.abs().max() <= 0.3 + 1e-6 and (drift[:, 1:] - drift[:, :-1]).abs().max() < 0.01  # smooth
    x, spiked = _apply(spikes=1.0)
    diff = spiked - x
    assert ((diff > 0).sum(-1) == 1).all() and ((diff.amax(-1) >= 0.5) & (diff.amax(-1) <= 2)).all()


def test_augmentation_is_part_of_a_run_identity_only_when_on():
    cfg = TrainConfig()
    on = replace(cfg, augment=AugmentConfig(noise=0.01))
    kwargs = {"model_code": "m", "device_type": "cpu", "precision": "fp32"}
    assert config_fingerprint(on, "d", **kwargs) != config_fingerprint(cfg, "d", **kwargs)
    assert settings_digest(on) != settings_digest(cfg)
    # off: the ids a default config had before augmentation existed (computed at commit a534915), so that
    # every stored run keeps its identity
    assert config_fingerprint(cfg, "d", **kwargs) == "8e306fc24f65" and settings_digest(cfg) == "080e70cf"


def test_a_run_trains_with_augmentation_and_records_it(tmp_path):
    import yaml

    from peakmixer.config import from_dict
    from peakmixer.synth.benchmarks import make_synth
    from peakmixer.train.checkpoint import load_checkpoint
    from peakmixer.train.loop import train

    data = make_synth("synth-ir17", 200, 0).save(tmp_path / "ir.npz")
    augment = {"noise": 0.01, "shift": 2.0, "spikes": 0.2}
    cfg = from_dict(
        TrainConfig,
        {
            "data": {"path": str(data)},
            "model": {"width": 8, "blocks": 6, "mixer_layers": 1, "hidden": 16},
            "optim": {"epochs": 1, "batch_size": 32},
            "augment": augment,
            "precision": "fp32",
            "progress": False,
            "out_dir": str(tmp_path / "run"),
        },
    )
    train(cfg)
    plain = replace(cfg, augment=AugmentConfig(), out_dir=str(tmp_path / "plain"))
    train(plain)
    weights = [load_checkpoint(tmp_path / r / "last.pt")["model"] for r in ("run", "plain")]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # the batches it saw differ
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["augment"]
    assert {k: written[k] for k in augment} == augment
    assert load_checkpoint(tmp_path / "run" / "best.pt")["config"]["augment"]["shift"] == 2.0
