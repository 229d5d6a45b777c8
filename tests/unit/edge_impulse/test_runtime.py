"""Where a block run finds its inputs when Edge Impulse's runner passes no paths."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from dendrisweep.edge_impulse.runtime import HOME_ENV, block_paths, keep_alive, no_project_data, read_info_file
from dendrisweep.errors import UsageError


def runner_home(home: Path) -> Path:
    np.save(home / "X_train_features.npy", np.zeros((4, 13), np.float32))
    np.save(home / "y_train.npy", np.arange(1, 5))
    return home


def test_the_runners_home_is_the_data_the_info_file_and_the_output(tmp_path: Path) -> None:
    home = runner_home(tmp_path)
    (home / "train_input.json").write_text("{}")
    paths = block_paths(None, None, None, env={HOME_ENV: str(home)})
    assert (paths.data, paths.out, paths.info) == (home, home, home / "train_input.json")


def test_studios_arguments_win_over_the_home_folder(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    home = runner_home(tmp_path / "home")
    data, out = tmp_path / "data", tmp_path / "out"
    paths = block_paths(data, out, None, env={HOME_ENV: str(home)})
    assert (paths.data, paths.out, paths.info) == (data, out, None)


def test_an_empty_home_gives_no_data_and_the_stop_names_what_it_looked_for(tmp_path: Path) -> None:
    paths = block_paths(None, None, None, env={HOME_ENV: str(tmp_path)})
    assert paths.data is None and paths.out == tmp_path
    message = str(no_project_data(env={HOME_ENV: str(tmp_path)}))
    assert f"{tmp_path} holds neither X_split_train.npy + Y_split_train.npy" in message
    assert "X_train_features.npy + y_train.npy" in message and "never trains on built-in data" in message


def test_an_info_file_named_but_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_info_file(tmp_path / "train_input.json")


def test_a_long_silent_step_prints_keep_alive_lines_and_stops_with_it(capsys: pytest.CaptureFixture[str]) -> None:
    with keep_alive("exporting", every=0.05):
        time.sleep(0.18)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2 and all(line.startswith("still exporting (") for line in lines)
    time.sleep(0.1)
    assert capsys.readouterr().out == ""  # the beat ended with the step
