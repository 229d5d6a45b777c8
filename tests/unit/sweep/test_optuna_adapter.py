"""dendrisweep/sweep/optuna_adapter.py: every use of Optuna beyond its documented study API, checked on
SQLite, in memory and through Optuna's gRPC storage proxy, so an Optuna upgrade that breaks one fails here."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.storage import open_storage, quiet_optuna
from tests.helpers import grpc_proxy


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> BaseStorage:
    """One gRPC proxy (in a thread) for the module: each test below uses studies of its own names."""
    quiet_optuna()
    return open_storage(grpc_proxy(open_storage(f"sqlite:///{tmp_path_factory.mktemp('proxy') / 'behind.db'}")))


@pytest.fixture(params=["sqlite", "memory", "grpc"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStorage]:
    quiet_optuna()
    if request.param == "memory":
        yield InMemoryStorage()
    elif request.param == "sqlite":
        yield open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    else:
        yield request.getfixturevalue("proxied")


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
        stale = adapter.stale_trials(study, grace=1.2)
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


def test_fail_writes_first_then_fails_and_says_when_the_trial_had_already_ended(storage: BaseStorage) -> None:
    study = optuna.create_study(storage=storage, study_name="fail")
    study.ask()
    (running,) = study.get_trials()
    assert adapter.fail(study, running, {"record": {"status": "lost"}})
    ended = adapter.reload(study, running)
    assert ended.state == TrialState.FAIL and ended.user_attrs["record"] == {"status": "lost"}
    assert not adapter.fail(study, ended, {"record": {"status": "lost again"}})  # another agent got there first
    assert adapter.reload(study, running).user_attrs["record"] == {"status": "lost"}


def test_retried_is_the_chain_of_trials_a_retry_re_runs(storage: BaseStorage) -> None:
    study = optuna.create_study(storage=storage, study_name="chain")
    first = study.ask({"x": FloatDistribution(0, 1)})
    adapter.retry(study, study.tell(first, state=TrialState.FAIL))
    second = study.ask()
    adapter.retry(study, study.tell(second, state=TrialState.FAIL))
    third = study.ask()
    trials = study.get_trials()
    assert adapter.retried(trials[first.number]) == []
    assert adapter.retried(trials[third.number]) == [first.number, second.number]


@pytest.mark.parametrize("url", ["sqlite", "postgresql"])
def test_the_fast_read_gives_what_optunas_api_gives(url: str, tmp_path: Path) -> None:
    """read_rdb's five SQL queries on Optuna's tables against Optuna's own API, on every state and kind of value."""
    if url == "postgresql":
        url = os.environ.get("DENDRISWEEP_TEST_POSTGRES", "")
        if not url:
            pytest.skip("no PostgreSQL server (DENDRISWEEP_TEST_POSTGRES)")
    else:
        url = f"sqlite:///{tmp_path / 'fast.db'}"
    name = f"fast-{time.time_ns()}"
    study = optuna.create_study(storage=open_storage(url), study_name=name)
    study.set_user_attr("sweep", {"method": "bayes", "parameters": {"x": {"min": 0, "max": 1}}})
    space = {"x": FloatDistribution(0, 1), "c": optuna.distributions.CategoricalDistribution(["a", "[1, 2]"])}
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING):
        trial = study.ask(space)
        trial.set_user_attr("record", {"status": state.name.lower(), "config": {"x": trial.params["x"]}})
        if state == TrialState.COMPLETE:
            study.tell(trial, 0.25)
        elif state != TrialState.RUNNING:
            study.tell(trial, state=state)
    study.enqueue_trial({"x": 0.5, "c": "a"}, user_attrs={"job": {"key": "k"}})
    found = adapter.read_rdb(url, name)
    assert found is not None
    attrs, trials = found
    assert attrs == study.user_attrs
    assert trials == adapter.stored_trials(optuna.load_study(study_name=name, storage=url))
    assert [t.state for t in trials] == ["COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING"]
    assert trials[0].value == 0.25 and trials[1].value is None and trials[0].params["c"] in ("a", "[1, 2]")
    assert adapter.read_rdb(url, "no such study") is None
