"""The extension never exits outside SHUTDOWN: an exit is a crash that resets the environment.
Found: an event from ``/event/next`` it cannot read (an ``eventType`` it does not know, a body
that is not a JSON object, a ``deadlineMs`` that is not a number) raised out of the event loop
(``_loop`` caught only the API's errors and OSError), and the extension died with a traceback.
It now logs the event, asks for the next one, and goes on.

Real processes: the layer's launcher (dist/layer, `make layer`) against bench's Extensions API
stub, which hands out the events pushed here.
"""
from __future__ import annotations

import pytest

from bench.common import LAYER
from bench.ext_stub import RealExtension


@pytest.mark.skipif(not (LAYER / "extensions" / "defer-runner").exists(), reason="run `make layer` first")
@pytest.mark.parametrize("event", [
    {"eventType": "RESTORE", "requestId": "x"},
    {"eventType": "INVOKE", "requestId": "x", "deadlineMs": "soon"},
    ["not", "an", "object"],
])
def test_an_event_it_cannot_read_is_logged_and_the_loop_goes_on(event):
    ext = RealExtension()
    try:
        ext.start()
        ext.stub._push(event)  # type: ignore[arg-type]
        assert ext.stub.wait_next_calls(2, 10), ext.log()  # it asked again instead of dying
        assert ext.proc is not None and ext.proc.poll() is None, ext.log()
        ext.stub.push_invoke("r1")
        assert ext.stub.wait_next_calls(3, 10), ext.log()
        ext.stub.push_shutdown()
        assert ext.proc.wait(10) == 0, ext.log()
        assert "cannot read" in ext.log()
    finally:
        ext.stop()
