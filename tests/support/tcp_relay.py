"""A TCP relay that can be cut: a fault between a process and an HTTP API it talks to.

Connections to ``relay.address`` are forwarded to the upstream until ``cut()``, which closes
the listener and every open connection, so calls in flight fail and new ones are refused,
as when the Lambda service behind the Extensions API goes away; ``resume()`` listens on the
same address again (a short outage).
"""
from __future__ import annotations

import socket
import threading
from typing import List, Tuple

__all__ = ["TcpRelay"]


class TcpRelay:
    def __init__(self, upstream: Tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._port = self._listener.getsockname()[1]
        self.address = "127.0.0.1:%d" % self._port
        self._open: List[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, name="tcp-relay", daemon=True).start()

    def resume(self) -> None:
        with self._lock:
            self._listener = socket.create_server(("127.0.0.1", self._port))
            self._cut = False
        threading.Thread(target=self._accept, name="tcp-relay", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = self._open + [self._listener], []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    server.close()
                    return
                self._open += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
