"""A minimal reader of the defer channel: ``extension.channel.ChannelServer`` with handlers that
only count. Separates the cost of the socket from the cost of the extension's intake
(decode + queue + journal). ``python -m bench.channel_reader PATH`` prints "ready".
"""

from __future__ import annotations

import sys
import threading
from typing import Dict


def main(path: str) -> None:
    from extension.channel import ChannelHandlers, ChannelServer
    from extension.listener import listen

    from handler_lib import wire

    held: Dict[str, int] = {}

    def on_item(item: wire.WorkItem, body: bytes) -> None:
        held[item.request_id] = held.get(item.request_id, 0) + 1

    def on_end(end: wire.EndOfInvoke) -> wire.Ack:
        return wire.Ack(end.request_id, held.pop(end.request_id, 0))

    server = ChannelServer(path, listen(path))
    server.start(ChannelHandlers(on_item=on_item, on_end=on_end,
                                 on_hello=lambda conn, hello: None, on_close=lambda conn: None))
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
