"""The collector pause used around large lazy imports."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from loopml.core.imports import collector_paused, first_import


@pytest.fixture(autouse=True)
def _collector_back_on() -> Iterator[None]:
    yield
    gc.enable()


def test_pause_turns_the_collector_off_and_back_on() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_restart_it_only_at_the_outermost_end() -> None:
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_in_the_body_still_restarts_it() -> None:
    gc.enable()
    with pytest.raises(ZeroDivisionError), collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_restart_it_when_both_end() -> None:
    gc.enable()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(10)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause is still on
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_objects_made_in_the_pause_end_in_the_oldest_generation() -> None:
    gc.enable()
    gc.collect()
    with collector_paused():
        made = [[i] for i in range(1000)]  # tracked containers, as an import makes
        assert gc.get_count()[0] >= 1000  # young, uncollected
    young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
    assert not any(obj is made[0] for obj in young)
    assert any(obj is made[0] for obj in gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0


def test_objects_frozen_by_someone_else_stay_frozen() -> None:
    gc.enable()
    sentinel = [[0]]  # frozen below: in no generation while it stays frozen
    gc.freeze()
    try:
        with collector_paused():
            pass
        # (the count itself can drop: frozen garbage of earlier tests may be freed meanwhile)
        assert gc.get_freeze_count() > 0
        generations = [gc.get_objects(generation=g) for g in range(3)]
        assert not any(obj is sentinel for objects in generations for obj in objects)
    finally:
        gc.unfreeze()


def test_first_import_pauses_only_for_a_module_not_loaded_yet() -> None:
    gc.enable()
    gc.collect()  # counts at zero: the 100 lists below cannot set off a collection
    with first_import("gc"):  # loaded: nothing is paused, nothing moved
        assert gc.isenabled()
        young = [[i] for i in range(100)]
    assert any(obj is young[0] for obj in gc.get_objects(generation=0))
    with first_import("loopml_no_such_module_loaded"):
        assert not gc.isenabled()
    assert gc.isenabled()
