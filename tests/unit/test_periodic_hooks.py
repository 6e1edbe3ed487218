"""@defer.every's schedule (pure logic, with the clock passed in) and what it refuses."""

from __future__ import annotations

import pytest

from handler_lib import _hooks, defer
from handler_lib.testing import periodic_hooks, run_hooks


@pytest.fixture(autouse=True)
def own_registry():
    saved = _hooks._hooks[:]
    _hooks._hooks.clear()
    yield
    _hooks._hooks[:] = saved


calls: list = []


def refresh() -> str:
    calls.append("refresh")
    return "refreshed"


def fails() -> None:
    raise SystemExit(3)


def test_a_hook_is_due_once_per_interval_and_never_twice_at_once():
    defer.every(10)(refresh)
    (hook,) = _hooks.registered()
    start = hook.next_due - 10
    assert _hooks.due(start + 9.9) == []                 # not before its interval (nor at import)
    (run,) = _hooks.due(start + 10)
    assert _hooks.due(start + 10_000) == []              # still running: never started twice
    run()
    assert _hooks.due(start + 15) == []                  # next one interval after the run started
    (run,) = _hooks.due(start + 1_000_000)               # thawed after days: due once ...
    run()
    assert _hooks.due(start + 1_000_001) == []           # ... not once per interval it slept through
    assert hook.runs == 2 and calls[-2:] == ["refresh", "refresh"]


def test_run_first_is_due_at_the_first_response_and_jitter_stays_within_bounds():
    defer.every(60, run_first=True)(refresh)
    defer.every(10, jitter=5)(fails)
    first, jittered = _hooks.registered()
    assert _hooks.due(first.next_due) and first.running
    jittered.schedule(now=100.0)
    assert 110.0 <= jittered.next_due <= 115.0


def test_a_base_exception_from_a_hook_is_a_failed_run_not_the_end_of_the_invoke():
    defer.every(1)(fails)
    (hook,) = _hooks.registered()
    (run,) = _hooks.due(hook.next_due)
    with pytest.raises(RuntimeError, match="periodic hook .*fails raised SystemExit: 3"):
        run()
    assert (hook.runs, hook.failures, hook.running) == (1, 1, False)  # runs again next interval


def test_a_restore_starts_every_schedule_over():
    defer.every(10)(refresh)
    (hook,) = _hooks.registered()
    hook.next_due = -1.0
    _hooks.restart_schedule()
    assert hook.next_due > 0


def test_testing_lists_and_runs_the_hooks():
    defer.every(5)(refresh)
    assert periodic_hooks() == [f"{__name__}:refresh"]
    assert run_hooks() == ["refreshed"]


def nested_factory():
    def inner() -> None: ...
    return inner


async def coroutine_hook() -> None: ...


def needs_argument(x: int) -> None: ...


@pytest.mark.parametrize("seconds, kwargs, error", [
    (0, {}, ValueError), (-1, {}, ValueError), ("60", {}, ValueError), (True, {}, ValueError),
    (float("nan"), {}, ValueError), (float("inf"), {}, ValueError), (10, {"jitter": 11}, ValueError),
    (10, {"jitter": -1}, ValueError),
])
def test_bad_intervals_are_refused_at_the_decorator(seconds, kwargs, error):
    with pytest.raises(error):
        defer.every(seconds, **kwargs)
    assert _hooks.registered() == []


@pytest.mark.parametrize("fn, error", [(nested_factory(), ValueError), (lambda: None, ValueError),
                                       (coroutine_hook, TypeError), (needs_argument, TypeError), (42, TypeError)])
def test_what_cannot_be_a_hook_is_refused_at_the_decorator(fn, error):
    with pytest.raises(error):
        defer.every(10)(fn)
    assert _hooks.registered() == []


release = __import__("threading").Event()


def hangs() -> None:
    release.wait(10)
    calls.append("hangs returned")


def test_between_requests_a_hook_past_its_budget_is_abandoned_and_not_started_again_until_it_returns(caplog):
    """Managed Instances: the runtime's thread waits for the hooks up to their budget, no longer."""
    calls.clear()
    defer.every(10)(hangs)
    defer.every(10)(refresh)
    (hook, second) = _hooks.registered()
    runs = _hooks.due(second.next_due)
    assert len(runs) == 2
    _hooks.run_between_requests(runs, budget_s=0.2)
    # the hanging hook was left on its thread; the budget was spent, so the next one did not run ...
    assert calls == []
    assert "still running after the hooks' budget" in caplog.text and "budget (0.2 s) is spent" in caplog.text
    # ... and is due again at once, while the abandoned one is not started a second time
    assert [r.hook.name for r in _hooks.due(second.next_due)] == [second.name]  # type: ignore[attr-defined]
    release.set()
    __import__("tests.support.waiting", fromlist=["wait_until"]).wait_until(
        lambda: not hook.running, 5, message="the abandoned hook never returned")
    assert calls == ["hangs returned"]


def test_between_requests_a_failing_hook_is_logged_and_the_next_one_runs(caplog):
    calls.clear()
    defer.every(10)(fails)
    defer.every(10)(refresh)
    (hook, second) = _hooks.registered()
    _hooks.run_between_requests(_hooks.due(second.next_due), budget_s=5)
    assert calls == ["refresh"]
    assert f"periodic hook {hook.name} raised SystemExit: 3" in caplog.text
    assert hook.failures == 1 and hook.runs == 1 and not hook.running
