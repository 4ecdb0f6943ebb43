import pytest

from peakmixer.config import ConfigError, apply_overrides, from_dict
from peakmixer.train.config import TrainConfig, load_config


def test_yaml_and_overrides_give_typed_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  width: 32\noptim:\n  lr: 1e-3\n  epochs: 3\n")  # YAML 1.1 reads 1e-3 as text
    cfg = load_config(path, ["optim.lr=0.01", "model.mixer=transformer", "model.blocks=4", "progress=false"])
    assert cfg.model.width == 32 and cfg.model.mixer == "transformer" and cfg.model.blocks == 4
    assert cfg.optim.lr == 0.01 and isinstance(cfg.optim.lr, float) and cfg.optim.epochs == 3
    assert cfg.progress is False


@pytest.mark.parametrize(
    "data,message",
    [
        ({"optim": {"learning_rate": 1}}, "unknown config key 'optim.learning_rate'"),
        ({"modle": {}}, "unknown config key 'modle'"),
        ({"optim": {"epochs": "ten"}}, "optim.epochs: expected int"),
        ({"optim": {"lr": "fast"}}, "optim.lr: expected float, got 'fast'"),
        ({"optim": {"epochs": True}}, "optim.epochs: expected an integer"),
        ({"precision": "fp8"}, "precision: 'fp8' is not one of"),
        ({"progress": "yes"}, "progress: expected true/false"),
        ({"model": 3}, "model: expected a mapping"),
    ],
)
def test_bad_configs_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, data)


def test_overrides_are_parsed_safely_not_evaluated():
    out = apply_overrides({}, ["a.b=__import__('os').system('false')", "c=[1, 2]"])
    assert out == {"a": {"b": "__import__('os').system('false')"}, "c": [1, 2]}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_shipped_configs_are_valid():
    from peakmixer.paths import REPO_ROOT
    from peakmixer.studies.sweep import load_sweep, plan

    train_configs = sorted((REPO_ROOT / "params" / "train").glob("*.yaml"))
    sweeps = sorted((REPO_ROOT / "params" / "sweeps").glob("*.yaml"))
    assert train_configs and sweeps
    for path in train_configs:
        assert load_config(path).data.path.startswith("data/")
    for path in sweeps:
        assert plan(load_sweep(path))


def test_an_unquoted_yaml_off_gets_a_hint():
    with pytest.raises(ConfigError, match="model.ip.mode: False is not one of .* quote the word"):
        load_config(None, ["model.ip.mode=off"])
    assert load_config(None, ["model.ip.mode='off'"]).model.ip.mode == "off"
