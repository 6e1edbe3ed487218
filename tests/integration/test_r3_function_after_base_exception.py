"""A ``defer.after`` callable that raises ``SystemExit`` or ``KeyboardInterrupt`` does not skip
the callables after it: every one runs, and the BaseException is logged with its traceback and
counted like any failing callable.

After the response (the extension holds the environment) the work runs on a thread of its own,
where there is nobody to re-raise to; without the extension it runs in the handler's thread
before the response, and the first BaseException is raised again once every callable ran and
the invoke's items were delivered.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

APP = textwrap.dedent("""
    import os
    from handler_lib import defer

    def _closed(name):
        with open(os.environ["OUT"], "a") as fh:
            fh.write(name + "\\n")

    @defer
    def handler(event, context):
        def stop_everything():
            raise {exc}("{exc} from post-response work")
        defer.after(stop_everything)
        defer.after(_closed, "db session closed")
        defer.sqs(os.environ["TEST_QUEUE_URL"], {{"tag": "{exc}"}})
        return {{"ok": True}}
""")


@pytest.mark.parametrize("exc", ["SystemExit", "KeyboardInterrupt"])
def test_a_base_exception_after_the_response_skips_no_callable(exc, built_layer, aws_resources, tmp_path):
    task = tmp_path / "fn"
    task.mkdir()
    (task / "app.py").write_text(APP.format(exc=exc))
    out = tmp_path / "out" / "closed.log"
    out.parent.mkdir()
    res = aws_resources()
    env = {**res.env(), "OUT": str(out), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, task, "app.handler", timeout_s=10, env=env, echo=False).start()
    try:
        result = box.invoke({})
        assert result.status == 200 and result.json() == {"ok": True}, result.body
        box.wait_for_report(result.request_id)
        # THEN the callable after it ran (the DB session was closed) ...
        assert out.read_text().splitlines() == ["db session closed"]
        # ... the BaseException was logged with its traceback, and counted
        logs = lambda: "\n".join(line.text for line in box.logs)  # noqa: E731
        wait_until(lambda: '"after_failed":1' in logs().replace(" ", ""), 5,
                   message=lambda: f"the failure was not counted:\n{logs()}")
        assert "post-response work handler.<locals>.stop_everything raised" in logs()
        assert f'raise {exc}("{exc} from post-response work")' in logs()  # its frames
        # and the invoke's item was delivered as usual
        assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": exc}]
    finally:
        box.stop()


def test_without_the_extension_every_callable_runs_and_the_base_exception_is_raised_after(
        aws_resources, monkeypatch, caplog):
    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER

    res = aws_resources()
    monkeypatch.setenv("DEFER_MODE", "inline")
    DISPATCHER.reset()
    ran = []

    @defer
    def handler(event, context):
        def stop_everything():
            raise SystemExit(3)
        defer.after(stop_everything)
        defer.after(lambda: ran.append("closed"))
        defer.sqs(res.queue_url, {"tag": "inline"})
        return "ok"

    try:
        with pytest.raises(SystemExit) as raised:
            handler({}, SimpleNamespace(aws_request_id="inline-base-exception"))
        assert raised.value.code == 3  # the handler's exit is still an exit ...
        assert ran == ["closed"]  # ... once every callable ran
        assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": "inline"}]  # and the items went
        assert any(r.exc_info and r.exc_info[0] is SystemExit for r in caplog.records), caplog.text
    finally:
        DISPATCHER.reset()
