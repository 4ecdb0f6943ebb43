"""The interpretable path: modes, sampling, the complement, class channels, and training through the loop."""

from pathlib import Path

import numpy as np
import pytest
import torch

from peakmixer.config import from_dict
from peakmixer.data.dataset import toy_dataset
from peakmixer.ip import IPModel, attach_ip, class_channels, ip_loss
from peakmixer.models import MIXERS, build_model, profile_model
from peakmixer.train.checkpoint import load_checkpoint, model_from_checkpoint
from peakmixer.train.config import TrainConfig
from peakmixer.train.loop import train

KW = {"width": 8, "blocks": 2, "input_length": 128, "hidden": 16, "mlp_hidden": 16, "mixer_layers": 1}


def ip_model(mode="trainable", task="multilabel", k=4, channels=12, mixer="mlpmixer") -> IPModel:
    torch.manual_seed(0)
    return attach_ip(
        build_model("respeak", mixer, n_classes=k, **KW), mode=mode, task=task, channels=channels
    )


def test_off_is_the_ordinary_model():
    plain = build_model("respeak", "mlpmixer", n_classes=4, **KW)
    assert attach_ip(plain, mode="off", task="multilabel") is plain


@pytest.mark.parametrize("mixer", MIXERS)
def test_without_targets_the_ip_model_is_an_ordinary_classifier(mixer):
    model = ip_model(mixer=mixer).eval()
    x = torch.randn(3, 1, 128)
    torch.manual_seed(1)
    a = model(x)
    b = model(x)  # no sampling: deterministic
    assert a.shape == (3, 4) and torch.equal(a, b)
    assert torch.equal(a, model.forward_head(model.forward_features(x)))
    cost = profile_model(model)
    assert cost["params"] > 0 and cost["macs"] > 0


def test_the_complement_excludes_every_positive_class_channels():
    model = ip_model(channels=12).eval()
    with torch.no_grad():  # classes 0, 1, 2 own channels 0-5, 6-8, 9-11; class 3 none
        model.correlation.fill_(-30.0)
        model.correlation[0, :6] = 30.0
        model.correlation[1, 6:9] = 30.0
        model.correlation[2, 9:] = 30.0
    seen = []
    model.head.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    x = torch.randn(2, 1, 128)
    y = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])
    model(x, y)
    pooled_3 = seen[-1]  # the last head call is pred_3's: mean over positions of the masked map
    assert torch.all(pooled_3[0, :6] == 0) and torch.all(pooled_3[0, 6:] != 0)
    assert torch.all(pooled_3[1, :9] == 0) and torch.all(pooled_3[1, 9:] != 0)
    # class_channels partitions the channels by their strongest class
    own, rest = class_channels(model, 1)
    assert own.tolist() == [6, 7, 8] and sorted(rest.tolist()) == [0, 1, 2, 3, 4, 5, 9, 10, 11]
    assert class_channels(model, 3)[0].numel() == 0  # argmax may leave a class without channels
    assert class_channels(model, 3, rule="topk", n=2)[0].numel() == 2


def test_multiclass_samples_one_class_and_masks_its_true_class():
    model = ip_model(task="multiclass")
    out = model(torch.randn(5, 1, 128), torch.tensor([0, 1, 2, 3, 0]))
    assert out.pred_2.shape == (5, 4) and out.correct.shape == (5,) and out.correct.dtype == torch.bool
    loss = ip_loss(out, torch.tensor([0, 1, 2, 3, 0]), "multiclass", 1.0)
    loss.backward()
    assert model.correlation.grad is not None and model.correlation.grad.abs().sum() > 0


def test_the_loss_counts_pred_2_only_where_the_sample_was_right():
    model = ip_model()
    y = torch.tensor([[1.0, 0, 1, 0], [0, 1.0, 0, 0]])
    out = model(torch.randn(2, 1, 128), y)
    out.correct[:] = False
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.pred_1, y)
    assert ip_loss(out, y, "multilabel", 1.0).item() == pytest.approx(expected.item())
    out.correct[0, 0] = True  # one right entry: its pred_2 term counts
    extra = torch.nn.functional.binary_cross_entropy_with_logits(out.pred_2[0, 0], y[0, 0])
    assert ip_loss(out, y, "multilabel", 0.5).item() == pytest.approx((expected + 0.5 * extra).item())


def tiny_config(tmp_path: Path, mode: str, task: str = "multilabel") -> TrainConfig:
    data = toy_dataset(n=96, length=128, n_classes=4, task=task, seed=0).save(tmp_path / f"{task}.npz")
    return from_dict(
        TrainConfig,
        {
            "data": {"path": str(data)},
            "model": {**KW, "ip": {"mode": mode, "channels": 12}},
            "optim": {"epochs": 2, "batch_size": 16, "lr": 0.01, "patience": 100},
            "precision": "fp32",
            "progress": False,
            "out_dir": str(tmp_path / f"{mode}-{task}"),
        },
    )


def test_a_frozen_matrix_stays_bit_identical_and_a_trainable_one_learns(tmp_path):
    for mode in ("frozen", "trainable"):
        cfg = tiny_config(tmp_path, mode)
        torch.manual_seed(cfg.seed)
        start = ip_model(mode=mode).correlation.detach().clone()  # what build draws under the same seed
        summary = train(cfg)
        end = load_checkpoint(Path(cfg.out_dir) / "last.pt")["model"]["correlation"]
        if mode == "frozen":
            assert torch.equal(end, start)
        else:
            assert not torch.equal(end, start)
        assert {"val_pred_1", "val_pred_2", "val_pred_3"} <= set(summary["history"][-1])
        assert set(summary["test"]["pathways"]) == {"pred_1", "pred_2", "pred_3"}


def test_the_multiclass_path_trains_and_reloads(tmp_path):
    cfg = tiny_config(tmp_path, "trainable", task="multiclass")
    summary = train(cfg)
    assert np.isfinite([h["train_loss"] for h in summary["history"]]).all()
    model = model_from_checkpoint(Path(cfg.out_dir) / "best.pt")
    assert isinstance(model, IPModel) and model.task == "multiclass" and model.mode == "trainable"
    assert 0 <= summary["test"]["accuracy"] <= 1 and 0 <= summary["test"]["pathways"]["pred_2"] <= 1


def test_the_redrawn_matrix_changes_every_training_batch_and_holds_still_out_of_training(tmp_path):
    from peakmixer.ip import RedrawnIPModel

    model = ip_model(mode="redrawn")
    assert isinstance(model, RedrawnIPModel) and model.mode == "redrawn"
    assert "correlation" not in dict(model.named_parameters())  # never learnt
    x, y = (
        torch.rand(3, 1, 128),
        torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32),
    )
    seen = [model.correlation.clone()]
    for _ in range(2):
        model.train()(x, y)
        seen.append(model.correlation.clone())
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    model.eval()(x, y)
    model(x)
    assert torch.equal(model.correlation, seen[2])  # evaluation and Grad-CAM read the last matrix drawn
    cfg = tiny_config(tmp_path, "redrawn")
    train(cfg)
    again = model_from_checkpoint(Path(cfg.out_dir) / "best.pt")
    assert isinstance(again, RedrawnIPModel) and again.spec["ip"]["mode"] == "redrawn"
