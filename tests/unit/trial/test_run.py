"""trial/run.py: a deployed model that cannot be measured is recorded, not a lost trial; which signal is a
preemption."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from dendrisweep.contract import DEPLOY_METRICS
from dendrisweep.data import Dataset, load_dataset
from dendrisweep.deploy import Policy
from dendrisweep.models import build_model
from dendrisweep.settings import defaults
from dendrisweep.trial.options import TrialOptions
from dendrisweep.trial.run import deployment_metrics, preempts


def _model(config: dict[str, Any], data: Dataset, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(config, data.shape).eval()


def test_an_export_error_leaves_the_metrics_unset_and_says_why(tmp_path: Path) -> None:
    """An inference model that does not behave like the trained one (what pai.inference_model guards
    against): the parity gate refuses it before any conversion, and the measurement returns its reason."""
    config = defaults()
    data = load_dataset(None, config)
    measured = deployment_metrics(_model(config, data, 0), _model(config, data, 1), data, tmp_path / "deployed",
                                  Policy.measure())
    assert measured["deploy_error"].startswith("ExportError: model.onnx does not match the trained model")
    assert not set(DEPLOY_METRICS) & set(measured) and measured["deploy_seconds"] > 0
    assert not (tmp_path / "deployed" / "model.tflite").exists()


@pytest.mark.parametrize(("signum", "preemptible", "preempted"), [
    (signal.SIGTERM, False, False),  # W&B's agent or ours stopping the run, under Slurm too
    (signal.SIGINT, False, False),  # W&B's run stop checker
    (signal.SIGUSR1, False, True),  # Slurm's preemption notice
    (signal.SIGTERM, True, True),  # a scheduler that preempts with SIGTERM, said so by --preemptible
])
def test_only_a_preemption_notice_or_a_declared_sigterm_is_a_preemption(
        tmp_path: Path, signum: int, preemptible: bool, preempted: bool) -> None:
    options = TrialOptions({}, None, False, None, tmp_path, "p", preemptible=preemptible)
    assert preempts(signum, options) == preempted
