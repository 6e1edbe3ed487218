"""defer.asgi in the production-like sandbox: async BackgroundTasks after the response, and their failures."""

from __future__ import annotations

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

def url_event(path: str, query: str = "") -> dict:
    """A function URL event (payload 2.0)."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.1", "userAgent": "t"},
                               "domainName": "abc.lambda-url.us-east-1.on.aws", "requestId": "r",
                               "routeKey": "$default", "stage": "$default"},
            "isBase64Encoded": False}


def test_async_background_work_runs_after_the_response_and_its_failure_is_counted(
        built_layer, aws_resources, packaged_function, tmp_path):
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, packaged_function("asgi"), "app.handler", timeout_s=10, env=env).start()
    try:
        box.invoke(url_event("/orders/warm"))
        box.wait_idle()
        drain_queue(res.queue_url, 2, timeout=3)
        result = box.invoke(url_event("/orders/slow", "fail=1"))
        assert result.json()["statusCode"] == 201 and result.elapsed_s < 0.1
        report = box.wait_for_report(result.request_id)
        assert report.post_runtime_extensions_ms >= 450  # the 0.5 s sleep ran after the response
        landed = drain_queue(res.queue_url, 2, timeout=3)
        assert sorted(m["from"] for m in landed) == ["after", "task"]  # both in the same invoke
        assert next(m for m in landed if m["from"] == "task")["after_s"] >= 0.5
        wait_until(lambda: 'raise ValueError(f"background task failed' in "\n".join(l.text for l in box.logs), 5,
                   message="the failure's traceback was not logged")  # the task's own frame
        logs = "\n".join(line.text for line in box.logs)
        assert "post-response work rest_of_the_app_call raised (request " + result.request_id in logs
        wait_until(lambda: any('"after_failed":1' in line.text.replace(" ", "") for line in box.logs), 5,
                   message="the failure was not counted by the extension")
    finally:
        box.stop()
