"""What the attack machine found, each replayed as its shrunk step sequence (with the seed
or the example that found it) so it stays found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .model import Context, Verdict, machine


def _replay(ctx: Context, *steps: tuple) -> None:
    state = machine(ctx)()
    state.start()
    try:
        for name, kwargs in steps:
            getattr(state, name)(**kwargs)
    finally:
        state.teardown()


@pytest.mark.xfail(strict=True, raises=Verdict, reason=(
    "found by the short profile with the exec wrapper on: the wrapper's Runtime API proxy lives in the "
    "extension's process, so an extension stopped (SIGSTOP) during an invoke holds the function's "
    "response until the invoke times out, although the function delivered its items itself within "
    "1 s; without the wrapper the same invoke answers in 1 s. Not fixed: the proxy would need a "
    "process of its own, or the runtime a way around it"))
def test_a_stopped_extension_holds_the_response_under_the_exec_wrapper(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path, exec_wrapper=True)
    _replay(ctx,  # the short profile's example, as Hypothesis printed it
            ("stop_the_extension_during_an_invoke", {"spec": [("sns", "g1", True)]}),
            ("aws_fault", {"action": "SendMessage", "calls": 4, "kind": "fail_entries"}),
            ("stop_the_extension_during_an_invoke", {"spec": [("sqs", "g2", True)]}),
            ("aws_fault", {"action": "PublishBatch", "calls": 1, "kind": "latency"}),
            ("stop_the_extension_during_an_invoke", {"spec": [
                ("sns", "g2", True), ("sns", "g2", True), ("sns", "g2", False), ("sqs", "g2", True),
                ("sqs", "g2", False), ("task", "g2", True)]}))


def test_post_response_work_of_a_handler_that_called_a_nested_one_runs_and_delivers(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Re-found on the layer of 46de408 (round 3, item 16: a nested @defer handler ended the
    invoke, and the outer one's defer.after work and its items were lost), by `make chaos`
    seed 1452437919, shrunk to this one step."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("invoke", {"after": 2, "after_raise": None, "nested": True, "spec": [
        ("sqs", "g1", True), ("sqs", "g1", True), ("sqs", "g1", False), ("sqs", "g1", False),
        ("task", "g2", True), ("fifo", "g2", False)]}))


def test_work_after_a_defer_after_callable_that_raised_keyboardinterrupt_runs(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Re-found on the layer of 46de408 (round 3, item 5: a KeyboardInterrupt or SystemExit
    raised by one defer.after callable silently skipped the ones after it), by `make chaos`
    seed 3877744353; its shrunk sequence, cut by hand to the step that loses the items."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("invoke", {"after": 2, "after_raise": "KeyboardInterrupt", "nested": False,
                             "spec": [("sqs", "g1", False)]}))


def test_a_send_into_a_stopped_extension_gives_up_before_the_deadline(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Re-found on the layer of 46de408 (round 3, item 12: a stopped extension blocked the
    handler in sendall with no timeout, past the invoke's deadline) by `make chaos` with
    CHAOS_WITHOUT=forbidden,nested,after_raise, seed 3295498252 (two flood steps of its
    sequence timed out; Hypothesis gave up shrinking it after five minutes); cut by hand to the
    flood on a warm connection: 9 MB pass the socket's buffers, so the old send waits for a
    reader that never reads, and the invoke times out."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("invoke", {"after": 0, "after_raise": None, "nested": False, "spec": [("sqs", "g1", False)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [("sqs", "g1", False)], "flood": True}))


def test_items_deferred_on_a_full_journal_survive_the_extension_killed_after_them(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Re-found on the layer of 46de408 (round 3, item 1: on a full /tmp the items the journal
    could not write were still acked as held, and died with the extension) by the same run,
    seed 3295498252 (its LOST item: an SNS message deferred once the journal's disk was full,
    before the extension was killed during the invoke); cut by hand to those steps. On the old
    layer the item is lost when the invoke is not answered Extension.Crash (an item of a crashed
    invoke is exempt, see the known failure below): a race, lost in 1 of 3 replays there."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("invoke", {"after": 0, "after_raise": None, "nested": False, "spec": [("sqs", "g1", False)]}),
            ("disk_full", {"full": True}),
            ("kill_the_extension_during_an_invoke", {"spec": [("sns", "g2", True)]}))


def test_a_fifo_item_left_to_a_stopped_extension_is_not_overtaken_by_the_next_invoke(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 1027144799 (REORDERED: FIFO group g2 arrived as
    [..., k106, k101]), cut by hand to three steps: under a stopped extension the forked
    children took the invoke's time, so the function's own delivery of its unconfirmed FIFO
    item (k4 here) ran out of it and the item was left to the extension, which delivered it
    only after the next invoke, whose item of the same group (k8) the function had delivered
    itself meanwhile. Fixed in handler_lib._dispatch: such an item goes again, first, with
    the next invoke's end (a duplicate at most)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("stop_the_extension_during_an_invoke", {"spec": [("sqs", "g1", False)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [
                ("forked", "g2", True), ("fifo", "g2", False), ("forked", "g1", True), ("forked", "g2", True)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [("fifo", "g2", True)]}))


def test_letters_an_inline_delivery_ran_out_of_time_for_go_with_a_later_invoke(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 3624121748 (LOST: 31 flood messages of one step),
    cut by hand to three steps: under a stopped extension, forked children took the invoke's
    time; the function gave up the flood's messages its own delivery had no time for and
    queued their dead letters, which had no time either. They stayed in the inline engine, and
    the next invokes, whose items the extension took, never ran that engine again. Fixed in
    handler_lib._dispatch: an invoke's end sends what an earlier inline delivery left.

    Each invoke's end gives those letters only 250 ms (LEFTOVER_S), and on a loaded machine
    (two fresh-clone CI runs) about 30 still waited in the function, backing off, at the
    SHUTDOWN, which lost them. Fixed in handler_lib._waiting_letters: the letters left
    waiting are written down for the extension, which sends them at SHUTDOWN."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("stop_the_extension_during_an_invoke", {"flood": True, "spec": [("sqs", "g1", True)]}),
            ("stop_the_extension_during_an_invoke", {"flood": True, "spec": [("forked", "g1", False),
                                                                            ("forked", "g2", True)]}),
            ("stop_the_extension_during_an_invoke", {"flood": True, "spec": [("forked", "g1", False),
                                                                            ("forked", "g2", False)]}))


def test_a_flood_the_invoke_had_no_time_for_survives_a_reset(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 2406964366 (LOST: the 33 flood messages of one step):
    under a stopped extension, forked children took the invoke's time, so the 9 MB the socket
    could not take were neither handed over nor delivered before the invoke's end; the
    function held their letters in memory for a later invoke's end, and the extension killed
    after it reset the environment, the function with it. Fixed in
    handler_lib._waiting_letters: the letters are written down for the extension, and the
    next one takes them over at its start (building a large flood's letters also costs a
    quarter of what it did, so they are written within the deadline margin)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("invoke_past_its_timeout", {"spec": [("sqs", "g1", False), ("sqs", "g1", False), ("sqs", "g1", False)]}),
            ("invoke", {"after": 2, "after_raise": "SystemExit", "nested": False,
                        "spec": [("forked", "g2", False), ("sns", "g1", False)]}),
            ("stop_the_extension_during_an_invoke", {"flood": True, "spec": [
                ("sqs", "g1", False), ("forked", "g1", False), ("forked", "g2", True)]}),
            ("disk_full", {"full": True}),
            ("kill_extension", {}),
            ("aws_fault", {"action": "SendMessageBatch", "calls": 2, "kind": "latency"}),
            ("kill_the_extension_during_an_invoke", {"spec": [("forbidden", "g1", True), ("forbidden", "g2", False)]}),
            ("invoke", {"after": 1, "after_raise": "SystemExit", "nested": False, "spec": [("sns", "g2", True)]}),
            ("faults_end", {}))


def test_a_fifo_entry_that_failed_in_a_batch_is_not_overtaken_by_its_group(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 2097122062: SQS failed the first entry of a batch
    (k1, group g2) and accepted a later one of its group (k4), which so landed first."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("aws_fault", {"action": "SendMessageBatch", "calls": 2, "kind": "fail_entries"}),
            ("invoke", {"after": 2, "after_raise": "SystemExit", "nested": False, "spec": [
                ("fifo", "g2", False), ("refused", "g2", True), ("fifo", "g1", False), ("fifo", "g2", True),
                ("refused", "g1", False)]}),
            ("aws_fault", {"action": "SendMessageBatch", "calls": 2, "kind": "5xx"}),
            ("kill_extension", {}),
            ("faults_end", {}),
            ("aws_fault", {"action": "SendMessageBatch", "calls": 3, "kind": "5xx"}))


@pytest.mark.xfail(strict=False, raises=Verdict, reason=(
    "found on main by the kill-during-invoke rule (most runs lose some items): the extension is "
    "SIGKILLed right after the handler's defer calls returned; Lambda (and the sandbox) answers "
    "Extension.Crash and resets the environment, killing the function with it. What the extension "
    "had not yet written to its journal lived only in the function's memory, which held it to deliver "
    "at the end of the invoke, an end that never comes. Not fixed: the hand-off confirms items "
    "after the call returns, by design (a call costs microseconds); docs/guarantees.md says so, and the "
    "checker exempts such items unless strict_crashes is set, as here"))
def test_items_the_extension_had_not_journaled_when_it_crashed_during_the_invoke(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path, strict_crashes=True)
    _replay(ctx, ("kill_the_extension_during_an_invoke", {"spec": [
        ("fifo", "g1", False), ("fifo", "g1", False), ("sqs", "g1", False), ("sqs", "g1", False)]}))


def test_a_forked_child_under_a_stopped_extension_does_not_hold_the_invoke_past_its_deadline(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by the short profile once forked children were in its mix (shrunk by
    Hypothesis, big payloads cut by hand): the handler's own inline delivery of an earlier
    invoke left the process an engine whose send threads a forked child does not have; the
    child's defer.sqs, inline because the extension was stopped, waited for them to the end of
    the inline budget, and the handler waiting on the child timed out. Fixed in
    handler_lib._inline (tests/integration/test_fork_after_inline_delivery.py)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, *[("stop_the_extension_during_an_invoke", {"spec": spec}) for spec in [
        [("sns", "g2", False), ("sqs", "g1", False), ("fifo", "g2", False), ("fifo", "g2", False),
         ("refused", "g2", False), ("forked", "g2", False)],
        [("sns", "g2", False), ("fifo", "g1", False), ("sqs", "g2", False), ("forked", "g1", False),
         ("refused", "g2", False), ("task", "g2", False)],
        [("forbidden", "g1", False), ("sns", "g1", False), ("sns", "g1", False), ("refused", "g1", False),
         ("forked", "g1", False), ("fifo", "g2", False)],
        [("fifo", "g1", False)],
        [("task", "g1", False), ("refused", "g1", False), ("refused", "g1", False), ("fifo", "g2", False),
         ("task", "g2", False), ("forked", "g2", False)]]])


def test_items_outlive_an_episode_of_expired_credentials(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Fails on the layer of 46de408 (round 3, item 9: ExpiredToken counted as permanent, so
    the items were dead-lettered and their letters failed the same way: all three lost)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("aws_fault", {"action": "SendMessageBatch", "calls": 4, "kind": "expired_token"}),
            ("invoke", {"after": 0, "after_raise": None, "nested": False, "spec": [
                ("sqs", "g1", False), ("sns", "g1", False), ("sqs", "g1", False)]}))


def test_a_body_sqs_refuses_raises_at_the_call(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Fails on the layer of 46de408 (round 3, item 18: U+FFFF in a body got an id)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("invoke", {"after": 0, "after_raise": None, "nested": False, "spec": [
        ("forbidden", "g1", False), ("sqs", "g1", False)]}))


def test_forked_children_under_a_stopped_extension_leave_by_the_parent_s_deadline(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by the short profile once forked children were in its mix, after the
    fix above: a child holds no invoke, so its wait for the stopped extension's hello (1 s
    each) and its inline delivery knew no deadline, and two children and the parent's ack wait
    ran an invoke past its timeout. A child's waits and inline work now end with the invoke its
    parent's forking thread worked for, and the ack wait with the invoke's deadline less the
    margin."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, *[("stop_the_extension_during_an_invoke", {"spec": spec}) for spec in [
        [("sqs", "g2", True), ("refused", "g1", True), ("forbidden", "g1", False), ("refused", "g2", False),
         ("sqs", "g2", False), ("sns", "g1", False)],
        [("forbidden", "g2", False), ("forked", "g2", True), ("sqs", "g1", False), ("sns", "g2", True)],
        [("forked", "g2", True)],
        [("fifo", "g1", True), ("forked", "g2", False), ("forked", "g1", False), ("sqs", "g2", False),
         ("sns", "g1", False), ("forbidden", "g2", False)],
        [("sns", "g1", False)]]])


def test_items_a_full_journal_could_not_take_are_delivered_after_post_response_work(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 1565145729 once the journal's disk could fill (shrunk
    by hand to two steps): the extension handed the items it could not journal back to the
    function and let them go; with defer.after work the function learns that from the ack of
    its end marker, after which the environment freezes once the extension's drain ends, and
    its own delivery never came. The extension now keeps them too (a duplicate at worst)."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("disk_full", {"full": True}),
            ("invoke", {"after": 2, "after_raise": None, "nested": False, "spec": [
                ("sns", "g2", True), ("sqs", "g1", False)]}))


def test_a_full_journal_under_stopped_and_killed_extensions_loses_nothing(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 3611435833 (its steps, the no-op ones left out); lost
    items on the layer before the full-journal fix above, delivered since."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("aws_fault", {"action": "SendMessageBatch", "calls": 3, "kind": "throttle"}),
            ("disk_full", {"full": True}),
            ("stop_the_extension_during_an_invoke", {"spec": [("task", "g1", False), ("forbidden", "g1", False)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [
                ("refused", "g1", False), ("sqs", "g1", False), ("sqs", "g1", False), ("sqs", "g1", False),
                ("sqs", "g1", False), ("forked", "g1", False)]}),
            ("kill_extension", {}), ("kill_extension", {}),
            ("invoke", {"after": 2, "after_raise": "SystemExit", "nested": True, "spec": [
                ("forbidden", "g1", False), ("fifo", "g2", False), ("task", "g1", False)]}))


def test_a_full_journal_with_post_response_work_and_a_crash_loses_nothing(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    """Found on main by `make chaos` seed 115694123; lost items on the layer before the
    full-journal fix above, delivered since."""
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx, ("disk_full", {"full": True}),
            ("stop_the_extension_during_an_invoke", {"spec": [
                ("forked", "g1", False), ("task", "g2", True), ("forked", "g1", True), ("forbidden", "g2", True)]}),
            ("invoke", {"after": 2, "after_raise": None, "nested": True, "spec": [
                ("sns", "g2", True), ("sns", "g1", True), ("refused", "g2", True), ("forked", "g1", True),
                ("task", "g2", False), ("sqs", "g1", True)]}),
            ("kill_the_extension_during_an_invoke", {"spec": [("forked", "g2", True), ("refused", "g2", True)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [("task", "g1", True), ("forbidden", "g1", False)]}),
            ("aws_fault", {"action": "SendMessage", "calls": 3, "kind": "fail_entries"}))


@pytest.mark.xfail(strict=False, raises=Verdict, reason=(
    "found on main by `make chaos` seed 3066687254 (it lost a forked child's item on the layer of "
    "that run; since the fork fixes it runs the invoke past its deadline instead): forked children "
    "deferring while the extension is stopped and SendMessageBatch is slow each wait up to 1 s for "
    "the hello and deliver inline within their parent's invoke; with the parent's own end-of-invoke "
    "work, the 300 ms margin of a 3 s function does not hold on a loaded machine. Not fixed: a child "
    "should learn from its parent that the extension does not answer, and not wait for it at all"))
def test_forked_children_under_a_stopped_extension_and_slow_aws_keep_the_deadline(
        built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any, tmp_path: Path) -> None:
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path)
    _replay(ctx,
            ("stop_the_extension_during_an_invoke", {"spec": [("sqs", "g2", True), ("forbidden", "g2", True),
                                                              ("forked", "g2", True)]}),
            ("aws_fault", {"action": "SendMessageBatch", "calls": 2, "kind": "latency"}),
            ("stop_the_extension_during_an_invoke", {"spec": [
                ("forked", "g1", False), ("sqs", "g2", False), ("forked", "g1", True), ("forbidden", "g2", True),
                ("sqs", "g1", True)]}),
            ("stop_the_extension_during_an_invoke", {"spec": [("sqs", "g2", False), ("task", "g2", True),
                                                              ("forbidden", "g1", True)]}),
            ("faults_end", {}),
            ("stop_the_extension_during_an_invoke", {"spec": [("sns", "g1", False), ("forked", "g1", True)]}))
