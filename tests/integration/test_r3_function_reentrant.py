"""``@defer`` is re-entrant: a ``@defer`` handler that calls another ``@defer`` function (a
router) runs one invoke. The nested call joins the outer invoke: it does not end it early
(the extension would drain and carry the rest over), deliver its items twice, or leave the
outer handler without an invoke for ``defer.after``.

Real parts: the built layer (the real extension) in the sandbox with the real runtime; moto.
"""
from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

APP = textwrap.dedent("""
    import os
    from handler_lib import defer

    QUEUE_URL = os.environ["TEST_QUEUE_URL"]

    @defer
    def orders(event, context):
        defer.sqs(QUEUE_URL, {"n": "inner"})
        return "orders"

    @defer
    def handler(event, context):  # a router: hands the event to the right @defer handler
        defer.sqs(QUEUE_URL, {"n": "before"})
        routed = orders(event, context)
        defer.sqs(QUEUE_URL, {"n": "after-inner"})
        if event.get("after"):
            defer.after(lambda: defer.sqs(QUEUE_URL, {"n": "post-response"}))
        return {"routed": routed}
""")


@pytest.mark.parametrize("after", [False, True])
def test_a_defer_handler_calling_another_runs_one_invoke(after, built_layer, aws_resources, tmp_path):
    task = tmp_path / "fn"
    task.mkdir()
    (task / "app.py").write_text(APP)
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, task, "app.handler", timeout_s=10, env=env, echo=False).start()
    try:
        result = box.invoke({"after": after})
        # THEN the outer handler's defer.after worked after the nested call ...
        assert result.status == 200 and result.json() == {"routed": "orders"}, result.body
        box.wait_for_report(result.request_id)
        # ... every item was delivered within the invoke, each once (a fifth would be a duplicate)
        expected = ["after-inner", "before", "inner"] + (["post-response"] if after else [])
        got = sorted(b["n"] for b in drain_queue(res.queue_url, len(expected) + 1, timeout=3))
        assert got == expected
        logs = "\n".join(line.text for line in box.logs)
        assert "RuntimeWarning" not in logs, logs  # nothing went unconfirmed, nothing was delivered inline
    finally:
        box.stop()


def test_a_nested_call_joins_the_outer_invoke_in_process(monkeypatch):
    """The same, seen from the dispatcher: one invoke, ended once, after the outer handler."""
    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER
    from handler_lib.testing import capture

    @defer
    def inner(event, context):
        assert DISPATCHER.invoke is outer_invoke[0]
        defer.sqs("https://sqs.example/q", {"n": "inner"})

    outer_invoke: list = []

    @defer
    def outer(event, context):
        outer_invoke.append(DISPATCHER.invoke)
        inner(event, context)
        assert DISPATCHER.invoke is outer_invoke[0] and not outer_invoke[0].ended
        defer.after(lambda: None)

    with capture() as deferred:
        outer({}, SimpleNamespace(aws_request_id="router"))
    assert [i.request_id for i in deferred] == ["router"]
    assert len(deferred.after) == 1
