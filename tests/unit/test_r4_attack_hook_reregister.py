"""@defer.every registered again under the same name (its module reloaded, or the hook
re-decorating itself while it runs): it is the same hook, so a run still going is never
joined by a second one, and its counts and schedule carry on."""

from __future__ import annotations

import pytest

from handler_lib import _hooks, defer


@pytest.fixture(autouse=True)
def own_registry():
    saved = _hooks._hooks[:]
    _hooks._hooks.clear()
    yield
    _hooks._hooks[:] = saved


def refresh() -> None:
    pass


def test_a_hook_registered_again_while_it_runs_is_not_started_twice():
    defer.every(10, run_first=True)(refresh)
    (hook,) = _hooks.registered()
    (run,) = _hooks.due(hook.next_due)      # the first run starts ...
    defer.every(10, run_first=True)(refresh)  # ... and the module is imported again meanwhile
    assert len(_hooks.registered()) == 1
    assert _hooks.due(hook.next_due + 10_000) == []  # still running: not started a second time
    run()
    (again,) = _hooks.due(hook.next_due + 10_000)
    again()
    (same,) = _hooks.registered()
    assert same.runs == 2


def test_registering_again_takes_the_new_interval():
    defer.every(10)(refresh)
    defer.every(30, jitter=5)(refresh)
    (hook,) = _hooks.registered()
    assert (hook.seconds, hook.jitter) == (30.0, 5.0)
