"""Config loading: defaults <- YAML <- dot-list overrides, with errors naming the key and its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsol.training.config import PRESET_DIR, load_config, to_plain

CONFIGS = PRESET_DIR


def test_defaults_are_cam_gap_on_synthetic() -> None:
    config = load_config()
    assert config.method.name == "cam"
    assert dict(config.method.options) == {}
    assert config.data.root is None
    assert config.optim.nesterov is True
    assert config.trainer.select_on == "val/error"


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 0.5\nmethod:\n  options:\n    head: max\ntrainer:\n  max_epochs: 7\n")
    config = load_config(path, ["optim.lr=0.25", "method.options.head_options.k=3", "trainer.devices=2"])
    assert config.optim.lr == 0.25
    assert config.trainer.max_epochs == 7
    assert to_plain(config)["method"]["options"] == {"head": "max", "head_options": {"k": 3}}
    assert config.trainer.devices == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.learning_rate=0.1"], "optim.learning_rate"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs"),
        (["seed"], "expected KEY=VALUE"),
        (["trainer.select_on=val/accuracy"], "trainer.select_on"),
        (["optim.name=rmsprop"], "optim.name"),
        (["optim.gamma=0"], "gamma"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_config(None, overrides)


def test_unknown_yaml_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  epochs: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*trainer\.epochs"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(Path("nowhere.yaml"))


def test_preset_path_finds_the_shipped_presets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from wsol.training.config import preset_path

    assert preset_path("cam_gap") == CONFIGS / "cam_gap.yaml"
    (tmp_path / "cam_gap.yaml").write_text("seed: 5\n")
    monkeypatch.setenv("WSOL_CONFIG_DIR", str(tmp_path))
    assert load_config(preset_path("cam_gap")).seed == 5
    with pytest.raises(FileNotFoundError, match="preset 'nope'.*cam_gap"):
        preset_path("nope")


def test_saved_config_is_the_base_of_a_resume() -> None:
    saved = to_plain(load_config(None, ["optim.lr=0.3", "name=run1"]))
    config = load_config(None, ["trainer.max_epochs=4"], base=saved)
    assert (config.optim.lr, config.name, config.trainer.max_epochs) == (0.3, "run1", 4)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_presets_load(path: Path) -> None:
    config = load_config(path)
    assert config.method.name


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_epochs=0",
        "trainer.max_epochs=-1",
        "trainer.max_steps=0",
        "trainer.check_val_every_n_epoch=0",
        "trainer.patience=-1",
        "data.eval_batch_size=0",
        "data.num_workers=-1",
    ],
)
def test_out_of_range_integers_name_the_key(override: str) -> None:
    key, value = override.split("=")
    with pytest.raises(ValueError) as error:
        load_config(None, [override])
    assert str(error.value).startswith(f"{key}: expected an integer >= ")
    assert str(error.value).endswith(f", got {value}")


@pytest.mark.parametrize(
    "override",
    ["trainer.limit_train_batches=0", "trainer.limit_test_batches=-1", "trainer.limit_val_batches=1.5"],
)
def test_batch_limits_are_counts_or_fractions(override: str) -> None:
    key, value = override.split("=")
    with pytest.raises(ValueError, match=rf"^trainer\.{key.split('.')[1]}: expected null, .* got {value}$"):
        load_config(None, [override])
    load_config(None, ["trainer.limit_val_batches=0", "trainer.limit_train_batches=0.5"])


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("optim:\n  lr: 0.1\n trainer: [\n", "3:2", "did not find expected key"),
        ("optim:\n  lr: 0.1\noptim:\n  lr: 0.2\n", "3:1", "found duplicate key optim"),
    ],
)
def test_yaml_syntax_error_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, problem: str
) -> None:
    from wsol.cli.main import main

    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    assert f"{path}:{where}: not valid YAML: {problem}" in capsys.readouterr().err
