"""A minimal reader of the defer channel: ``extension.channel.ChannelServer`` with handlers that
only count. Separates the cost of the socket from the cost of the extension's intake
(decode + queue + journal). ``python -m bench.channel_reader PATH`` prints "ready".
"""

from __future__ import annotations

import sys
import threading


def main(path: str) -> None:
    from extension.channel import ChannelHandlers, ChannelServer
    from extension.listener import listen

    count = [0]

    def on_item(item: object) -> None:
        count[0] += 1

    server = ChannelServer(path, listen(path))
    server.start(ChannelHandlers(on_item=on_item, on_end=lambda end: None,
                                 on_hello=lambda conn, hello: None, on_close=lambda conn: None))
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
