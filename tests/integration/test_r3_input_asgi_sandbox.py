"""defer.asgi under the real awslambdaric runtime (lambda_sandbox), when the app raises
CancelledError, SystemExit or KeyboardInterrupt (review finding 13).

Each must end its invoke with a 500 (what Mangum answers for any exception), well before the
function's timeout; its traceback must reach the function's log; and the same environment
(no new init) must go on answering, and delivering what it defers, afterwards. Raised by a
BackgroundTask after the response, it is reported and counted like any failing post-response
work. Before the fix the first such invoke ran into the function's timeout, and after a
SystemExit every later one did too.
"""

from __future__ import annotations

import textwrap

from lambda_sandbox import Sandbox
from tests.integration.conftest import FUNCTIONS
from tests.integration.test_sandbox_asgi import url_event
from tests.support.function_package import task_root
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

TIMEOUT_S = 6

APP = textwrap.dedent('''
    """Routes that raise what is not an Exception, and one that defers and answers."""
    import asyncio
    import os

    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from handler_lib import defer

    RAISES = {"cancel": asyncio.CancelledError, "exit": SystemExit, "interrupt": KeyboardInterrupt}


    async def raise_now(request):
        raise RAISES[request.path_params["what"]](f"raised on purpose by /raise/{request.path_params['what']}")


    def raise_later(what):
        raise RAISES[what](f"raised on purpose after the response ({what})")


    async def late(request):
        what = request.path_params["what"]
        return JSONResponse({"late": what}, background=BackgroundTask(raise_later, what))


    async def ok(request):
        defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": request.path_params["tag"]})
        return JSONResponse({"tag": request.path_params["tag"]}, status_code=201)


    handler = defer.asgi(Starlette(routes=[Route("/raise/{what}", raise_now, methods=["POST"]),
                                           Route("/late/{what}", late, methods=["POST"]),
                                           Route("/ok/{tag}", ok, methods=["POST"])]))
''')


def logs_of(box: Sandbox) -> str:
    return "\n".join(line.text for line in box.logs)


def test_cancelled_exit_and_interrupt_end_their_invoke_with_a_500_and_the_environment_goes_on(
        built_layer, aws_resources, tmp_path):
    res = aws_resources()
    source = tmp_path / "function"
    source.mkdir()
    (source / "app.py").write_text(APP)
    function_dir = task_root(source, tmp_path / "task", FUNCTIONS / "asgi" / "requirements.txt")  # Starlette, Mangum
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, function_dir, "app.handler", timeout_s=TIMEOUT_S, env=env).start()
    try:
        first = box.invoke(url_event("/ok/first"))
        assert first.json()["statusCode"] == 201
        assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": "first"}]
        for n, (what, exc_name) in enumerate((("cancel", "CancelledError"), ("exit", "SystemExit"),
                                              ("interrupt", "KeyboardInterrupt")), start=1):
            result = box.invoke(url_event(f"/raise/{what}"))
            assert result.function_error is None, (what, result.body[:500])
            assert result.json()["statusCode"] == 500, (what, result.body[:500])
            report = box.wait_for_report(result.request_id)
            assert report.status == "success" and report.init_ms is None, (what, report)
            # The runtime writes a record's last line when the next one comes: its first line
            # names the exception, and the traceback the frame that raised it.
            wait_until(lambda: f"the ASGI app raised {exc_name} before its response" in logs_of(box), 5,
                       message=f"the {exc_name} was not logged")
            wait_until(lambda: logs_of(box).count("in raise_now") == n, 5,
                       message=f"the traceback of the {exc_name} was not logged")
            after = box.invoke(url_event(f"/ok/after-{what}"))
            assert after.json()["statusCode"] == 201, (what, after.body[:500])
            assert box.wait_for_report(after.request_id).init_ms is None  # the same environment
            assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": f"after-{what}"}]
        logs = logs_of(box)
        assert "CancelledError: raised on purpose by /raise/cancel" in logs  # last lines, written by now
        assert "SystemExit: raised on purpose by /raise/exit" in logs

        late = box.invoke(url_event("/late/exit"))
        assert late.json()["statusCode"] == 200
        wait_until(lambda: "SystemExit: raised on purpose after the response (exit)" in logs_of(box), 5,
                   message="the SystemExit after the response was not logged")
        assert "post-response work rest_of_the_app_call raised (request " + late.request_id in logs_of(box)
        wait_until(lambda: any('"after_failed":1' in line.text.replace(" ", "") for line in box.logs), 5,
                   message="the failure after the response was not counted by the extension")
        final = box.invoke(url_event("/ok/final"))
        assert final.json()["statusCode"] == 201
        assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": "final"}]
    finally:
        box.stop()
