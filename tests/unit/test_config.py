"""The registry, the CLI it generates, and the four config layers, through train_trial.py's own main() in process."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dendrisweep.errors import UsageError
from dendrisweep.settings import SETTINGS, Setting, defaults, lookup
from dendrisweep.trial.cli import main


def trial_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """train_trial.py's main() with `args`: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def print_config(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = trial_cli(capsys, "--print-config", *args)
    assert code == 0, err
    return dict(json.loads(out))


def non_default(setting: Setting) -> Any:
    """A valid value different from the default, for any setting in the registry."""
    if setting.kind == "bool":
        return not setting.default
    if setting.kind == "choice":
        return next(c for c in setting.choices if c != setting.default)
    if setting.kind == "floats":
        return [0.5, 0.25]
    if setting.kind == "text":
        return "weights/imagenet.pt"
    if setting.kind == "device":
        return "cpu"
    if setting.kind == "int":
        return setting.default + 1 if setting.high is None or setting.default < setting.high else setting.default - 1
    return (setting.default + setting.high) / 2 if setting.high is not None else setting.default * 2


def cli_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def test_every_setting_reaches_the_config_through_its_dashed_flag(capsys: pytest.CaptureFixture[str]) -> None:
    wanted = {name: non_default(s) for name, s in SETTINGS.items()}
    args = [a for name, value in wanted.items() for a in (SETTINGS[name].flag, cli_text(value))]
    resolved = print_config(capsys, *args)
    assert resolved == wanted


def test_every_setting_reaches_the_config_through_wandb_args_macro_spelling(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`${args}` renders `--max_dendrites=2`, booleans as True/False, lists as Python reprs."""
    wanted = {name: non_default(s) for name, s in SETTINGS.items()}
    resolved = print_config(capsys, *[f"--{name}={value}" for name, value in wanted.items()])
    assert resolved == wanted


def test_bare_boolean_flag_means_true(capsys: pytest.CaptureFixture[str]) -> None:
    """`${args_no_boolean_flags}` passes a true boolean as a bare switch."""
    assert print_config(capsys, "--pai-graphs")["pai_graphs"] is True


def test_print_config_reflects_each_precedence_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"learning_rate": 0.01, "batch_size": 16, "epochs": 7}))
    param_file = tmp_path / "sweep-params.yaml"  # what `wandb agent` writes
    param_file.write_text(yaml.safe_dump({"epochs": {"value": 11}}))

    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(param_file))
    resolved = print_config(capsys, "--config", str(config_file), "--batch-size", "8", "--epochs", "9")
    assert resolved["dropout"] == defaults()["dropout"]  # registry default
    assert resolved["learning_rate"] == 0.01  # config file beats default
    assert resolved["batch_size"] == 8  # CLI beats config file
    assert resolved["epochs"] == 11  # sweep value beats CLI


def test_config_file_accepts_json_and_wandb_value_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"max-dendrites": {"value": 5}, "wandb_version": 1, "dropout": 0.1}')
    resolved = print_config(capsys, "--config", str(path))
    assert (resolved["max_dendrites"], resolved["dropout"]) == (5, 0.1)


@pytest.mark.parametrize("args, message", [
    (["--max-dendrite", "3"], "unknown setting '--max-dendrite'; did you mean 'max_dendrites'?"),
    (["--learning_rat=0.1"], "did you mean 'learning_rate'?"),
    (["--max-dendrites", "two"], "max_dendrites: expected an integer, got 'two'"),
    (["--max-dendrites", "2.5"], "max_dendrites: expected an integer"),
    (["--epochs", "-3"], "epochs: -3 is below the minimum 1"),
    (["--dropout", "nan"], "dropout: expected a finite number"),
    (["--switch-mode", "fast"], "switch_mode: 'fast' is not one of history, fixed"),
    (["--dendrites", "maybe"], "dendrites: expected true/false or 1/0"),
    (["--improvement-threshold", "[0.1,"], "improvement_threshold: expected a list of numbers"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = trial_cli(capsys, "--print-config", *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize("content, message", [
    ("learning_rate: [0.1\n", "not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping of settings, got list"),
    ("max_dendrits: 3\n", "unknown setting 'max_dendrits'; did you mean 'max_dendrites'?"),
    ("epochs: 0\n", "epochs: 0 is below the minimum 1"),
])
def test_bad_config_files_exit_2(tmp_path: Path, content: str, message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, _, err = trial_cli(capsys, "--print-config", "--config", str(path))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_unknown_key_in_sweep_param_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("lr:\n  value: 0.1\n")
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(path))
    code, _, err = trial_cli(capsys, "--print-config")
    assert code == 2 and "sweep parameter file" in err and "unknown setting 'lr'" in err


def test_lookup_accepts_every_spelling_and_suggests() -> None:
    assert lookup("--max-dendrites") is lookup("max_dendrites") is SETTINGS["max_dendrites"]
    with pytest.raises(UsageError, match="did you mean 'n_epochs_to_switch'"):
        lookup("epochs_to_switch")


def test_registry_defaults_are_valid_values() -> None:
    for setting in SETTINGS.values():
        assert setting.coerce(setting.default) == setting.default, setting.name


def test_a_sweeps_value_null_is_unset_not_the_text_none(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B writes `value: null` to the parameter file as null and renders it "None" in ${args}."""
    assert print_config(capsys, "--pretrained_weights=None")["pretrained_weights"] == ""
    param_file = tmp_path / "params.yaml"
    param_file.write_text("wandb_version: 1\npretrained_weights:\n  value: null\n")
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(param_file))
    assert print_config(capsys)["pretrained_weights"] == ""
    code, _, err = trial_cli(capsys, "--print-config", "--epochs=None")
    assert code == 2 and "epochs: expected an integer, got 'None'" in err


@pytest.mark.parametrize(("given", "expected"), [("true", "on"), ("True", "on"), ("1", "on"), ("false", "off"),
                                                ("0", "off"), ("auto", "auto")])
def test_log_model_takes_booleans_as_wandbs_integrations_do(capsys: pytest.CaptureFixture[str], given: str,
                                                             expected: str) -> None:
    assert print_config(capsys, "--log-model", given)["log_model"] == expected


RUNNER_ARGS = ["--edge-impulse", "--epochs", "7", "--learning-rate", "0.01", "--validation-set-size", "0.25",
               "--input-shape", "(1, 40, 32)"]  # what edge-impulse-blocks runner passes (cli/block-runner.ts)


def test_edge_impulse_runners_arguments_are_accepted_and_used(capsys: pytest.CaptureFixture[str]) -> None:
    config = print_config(capsys, *RUNNER_ARGS)
    assert (config["epochs"], config["learning_rate"], config["validation_set_size"]) == (7, 0.01, 0.25)
    assert config["features_per_frame"] == 32  # the input shape's last dimension: the frame width


def test_a_features_per_frame_contradicting_the_input_shape_is_one_line_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = trial_cli(capsys, "--print-config", *RUNNER_ARGS, "--features-per-frame", "40")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "features_per_frame 40 contradicts --input-shape (1, 40, 32)" in err
    # At its default (Studio passes every UI parameter) the parameter gives way to the stated shape.
    assert print_config(capsys, *RUNNER_ARGS, "--features-per-frame", "13")["features_per_frame"] == 32
    assert print_config(capsys, "--input-shape", "(650,)")["features_per_frame"] == 13  # a flat shape says nothing


def test_under_edge_impulse_an_undeclared_argument_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = trial_cli(capsys, "--print-config", *RUNNER_ARGS, "--studio-only-flag", "3", "--other=x")
    assert code == 0 and json.loads(out)["epochs"] == 7
    assert "warning: ignoring --studio-only-flag" in err and "warning: ignoring --other" in err


@pytest.mark.parametrize("args, message", [
    (["--edge-impulse", "--max-dendrite", "2"], "did you mean 'max_dendrites'?"),  # a UI parameter's typo
    (["--studio-only-flag", "3"], "unknown setting '--studio-only-flag'"),  # outside Edge Impulse: an error
    (["--input-shape", "(a, b)"], "--input-shape: expected a tuple of integers"),
])
def test_near_misses_and_unknowns_outside_edge_impulse_stay_errors(args: list[str], message: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = trial_cli(capsys, "--print-config", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
