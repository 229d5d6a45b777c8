"""trial/tracking.py: a trial logs online wherever wandb's own credential resolution finds a key, offline
otherwise (checked with wandb's own code: self-hosted servers on a port, $NETRC, WANDB_API_KEY)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dendrisweep.trial.tracking import logs_model, wandb_mode

KEY = "0123456789abcdef0123456789abcdef01234567"  # the 40-character form wandb accepts


@pytest.fixture(autouse=True)
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A home without any W&B credentials, and a fresh wandb singleton before and after (it caches settings)."""
    import wandb

    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    wandb.teardown()
    yield
    wandb.teardown()


def test_without_credentials_a_trial_logs_offline() -> None:
    assert wandb_mode() == "offline"


def test_an_api_key_in_the_environment_lets_wandb_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert wandb_mode() is None


def test_a_netrc_entry_for_a_self_hosted_server_on_a_port_is_found(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine localhost:8080\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("WANDB_BASE_URL", "http://localhost:8080")
    assert wandb_mode() is None  # keyed by host and port, as wandb keys it
    monkeypatch.setenv("WANDB_BASE_URL", "http://localhost:9090")
    import wandb

    wandb.teardown()
    assert wandb_mode() == "offline"  # another server: no key for it


def test_an_explicit_mode_is_left_to_wandb() -> None:
    assert wandb_mode({"WANDB_MODE": "offline"}) is None and wandb_mode({"WANDB_MODE": "online"}) is None


@pytest.mark.parametrize("setting, offline, logged", [("auto", False, True), ("auto", True, False),
                                                      ("on", True, True), ("off", False, False)])
def test_log_model_auto_logs_online_runs_only(setting: str, offline: bool, logged: bool) -> None:
    assert logs_model(setting, offline) is logged
