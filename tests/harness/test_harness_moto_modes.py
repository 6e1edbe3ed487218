"""Both moto modes (subprocess, in-process thread) start, answer and stop cleanly."""
from __future__ import annotations

import pytest

from tests.support.moto_server import MotoServer, client
from tests.support.waiting import port_open


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_moto_server_modes(mode: str, tmp_path) -> None:
    with MotoServer(mode=mode, log_dir=str(tmp_path)) as server:
        sqs = client("sqs", server.endpoint_url)
        url = sqs.create_queue(QueueName="modes")["QueueUrl"]
        assert url.startswith(server.endpoint_url)
        server.reset()
        assert sqs.list_queues().get("QueueUrls", []) == []
    assert not port_open(server.host, server.port)
