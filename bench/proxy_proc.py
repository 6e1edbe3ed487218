"""The fault proxy (tests/support/fault_proxy.py) in a process of its own, driven over stdin/stdout.

Out of process so that its threads never compete for the GIL with the code being measured.
Control: one JSON command per line on stdin, one JSON reply per line on stdout:
``{"cmd": "latency", "s": 0.02}``, ``{"cmd": "recorded"}``, ``{"cmd": "reset"}``,
``{"cmd": "quota", "action": "PutEvents", "per_second": 200, "unit": "entries"}``, ``{"cmd": "counts"}``
(requests per action, and per action with a quota what it admitted and throttled).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional

from .common import PY, ROOT, child_env, stop_process


def serve(upstream: str) -> None:
    from tests.support.fault_proxy import FaultProxy

    proxy = FaultProxy(upstream).start()
    print(json.dumps({"endpoint_url": proxy.endpoint_url}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "latency":
            proxy.set_latency(float(cmd["s"]))
            reply: Any = {"ok": True}
        elif cmd["cmd"] == "recorded":
            reply = [{"service": r.service, "action": r.action, "outcome": r.outcome, "at": r.at}
                     for r in proxy.recorded()]
        elif cmd["cmd"] == "quota":
            proxy.set_quota(cmd["action"], float(cmd["per_second"]), unit=cmd.get("unit", "requests"),
                            burst=cmd.get("burst"), service=cmd.get("service"))
            reply = {"ok": True}
        elif cmd["cmd"] == "counts":
            reply = {"requests": proxy.counts(), "quotas": proxy.quota_stats()}
        elif cmd["cmd"] == "reset":
            proxy.reset()
            reply = {"ok": True}
        else:
            reply = {"error": f"unknown {cmd}"}
        print(json.dumps(reply), flush=True)
    proxy.stop()


class ProxyProcess:
    def __init__(self, upstream: str, latency_s: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "bench.proxy_proc", upstream], cwd=str(ROOT),
            env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.endpoint_url = json.loads(self.proc.stdout.readline())["endpoint_url"]  # type: ignore[union-attr]
        self._lock = threading.Lock()
        if latency_s:
            self.set_latency(latency_s)

    def _cmd(self, **cmd: Any) -> Any:
        with self._lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
            return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def set_latency(self, seconds: float) -> None:
        self._cmd(cmd="latency", s=seconds)

    def recorded(self) -> List[Dict[str, Any]]:
        return self._cmd(cmd="recorded")

    def reset(self) -> None:
        self._cmd(cmd="reset")

    def set_quota(self, action: str, per_second: float, unit: str = "requests",
                  burst: Optional[float] = None) -> None:
        """A token bucket in front of ``action`` for every client (FaultProxy.set_quota)."""
        self._cmd(cmd="quota", action=action, per_second=per_second, unit=unit, burst=burst)

    def counts(self) -> Dict[str, Any]:
        """{"requests": {action: n}, "quotas": {action: admitted/throttled requests and entries}}."""
        reply: Dict[str, Any] = self._cmd(cmd="counts")
        return reply

    def stop(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(5)
        except Exception:  # noqa: BLE001
            stop_process(self.proc)


if __name__ == "__main__":
    serve(sys.argv[1])
