"""dendrisweep/sweep/optuna_adapter.py: every use of Optuna beyond its documented study API, checked on
SQLite, in memory and through Optuna's gRPC storage proxy, so an Optuna upgrade that breaks one fails here."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage, InMemoryStorage, run_grpc_proxy_server
from optuna.study import StudyDirection
from optuna.trial import TrialState

from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.storage import open_storage, quiet_optuna


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def grpc_proxy(backend: BaseStorage) -> str:
    """Optuna's gRPC storage proxy in front of `backend`, in a daemon thread; its grpc:// URL."""
    port = free_port()
    threading.Thread(target=run_grpc_proxy_server, args=(backend,), kwargs={"host": "127.0.0.1", "port": port},
                     daemon=True).start()
    return f"grpc://127.0.0.1:{port}"


@pytest.fixture(params=["sqlite", "memory", "grpc"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStorage]:
    quiet_optuna()
    if request.param == "memory":
        yield InMemoryStorage()
    elif request.param == "sqlite":
        yield open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    else:
        yield open_storage(grpc_proxy(open_storage(f"sqlite:///{tmp_path / 'behind-proxy.db'}")))


def test_ids_are_the_storage_ids(storage: BaseStorage) -> None:
    study = optuna.create_study(storage=storage, study_name="ids")
    trial = study.ask()
    assert adapter.study_id(study) == storage.get_study_id_from_name("ids")
    assert storage.get_trial(adapter.trial_id(trial)).number == trial.number
    assert adapter.trial_id(study.get_trials()[0]) == adapter.trial_id(trial)
    adapter.study_storage(study).set_trial_user_attr(adapter.trial_id(trial), "seen", True)
    assert study.get_trials()[0].user_attrs["seen"] is True


def test_a_silent_trial_goes_stale_and_a_beating_one_does_not(storage: BaseStorage) -> None:
    study = optuna.create_study(storage=storage, study_name="beats")
    alive, dead = study.ask(), study.ask()
    heartbeat = adapter.Heartbeat(storage, adapter.trial_id(alive), interval=0.1)
    try:
        time.sleep(1.5)  # the dead one's only sign of life is its start (whole seconds in some storages)
        stale = adapter.stale_trials(storage, adapter.study_id(study), grace=1.2)
    finally:
        heartbeat.stop()
    assert [t.number for t in stale] == [dead.number]
    assert isinstance(storage.get_trial(adapter.trial_id(alive)).system_attrs[adapter.HEARTBEAT], float)


def test_retry_queues_the_parameters_and_user_attributes_again(storage: BaseStorage) -> None:
    study = optuna.create_study(storage=storage, study_name="retry")
    trial = study.ask({"x": FloatDistribution(0, 1)})
    trial.set_user_attr("job", "dendritic-abc-seed1000")
    adapter.retry(study, study.tell(trial, state=TrialState.FAIL))
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert queued.params == trial.params and queued.user_attrs["job"] == "dendritic-abc-seed1000"
    popped = study.ask()
    assert popped.number == queued.number and popped.params == trial.params


def test_the_storage_lock_admits_one_holder_at_a_time(storage: BaseStorage) -> None:
    inside, most = [0], [0]

    def work() -> None:
        for _ in range(5):
            with adapter.storage_lock(storage, "budget"):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.005)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert all(not s.study_name.startswith(adapter.LOCK_PREFIX) for s in storage.get_all_studies())  # released


def test_a_lock_left_by_a_dead_holder_is_broken_after_its_lease(storage: BaseStorage) -> None:
    storage.create_new_study([StudyDirection.MINIMIZE], adapter.LOCK_PREFIX + "orphan")  # its holder died
    started = time.monotonic()
    with adapter.storage_lock(storage, "orphan", lease=0.3):
        waited = time.monotonic() - started
    assert 0.3 <= waited < 5
