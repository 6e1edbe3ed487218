"""`Sandbox`: the public entry point, used by the CLI, by tests and by `make demo`.

Example
-------
>>> with Sandbox("dist/layer", "examples/api_gateway", "app.handler", timeout_s=5) as box:
...     result = box.invoke({"path": "/orders"})
...     report = box.wait_for_report(result.request_id)
"""
from __future__ import annotations

import http.client
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, TextIO, Union

from . import extensions_api, invoke_api, runtime_api
from .config import DEFAULT_MAX_CONCURRENCY, SandboxConfig
from .errors import SandboxConfigError, SandboxStartError
from .httpserver import HttpServer, Router
from .layers import merge_layers
from .lifecycle import Lifecycle
from .logsink import LogLine, LogSink
from .report import Report
from .runtime_packages import prepare_runtime_packages

__all__ = ["Sandbox", "InvokeResult"]

PathLike = Union[str, Path]


@dataclass(frozen=True)
class InvokeResult:
    """The invoke endpoint's reply, plus how long the caller waited for it."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    request_id: str
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def function_error(self) -> Optional[str]:
        return self.headers.get("X-Amz-Function-Error")


class Sandbox:
    """A local Lambda execution environment (runtime, extensions, telemetry, freeze).

    Parameters
    ----------
    opt_dir : the layer directory (what Lambda mounts on /opt): `extensions/`, `python/`; or a
        list of layer directories, merged into one /opt in order (a later layer's file wins), as
        Lambda merges a function's layers.
    task_dir : the function's code (LAMBDA_TASK_ROOT).
    handler : MODULE.FUNCTION.
    timeout_s, memory_mb : the function's configuration (1..900 s, 128..10240 MB).
    env : the function's environment variables, on top of the sandbox's own.
    port : invoke endpoint port (0 picks one); `runtime_api_port` likewise.
    init : "on-invoke" (default): init runs inside the first invoke, whose REPORT carries
        Init Duration, as on on-demand Lambda; "eager": init runs in `start()`.
    runtime : "python" (awslambdaric) or "provided": the task root's `bootstrap`, else the
        layer's, as a custom runtime (provided.al2023); `handler` is then free-form.
    isolated_env : pass only `env` and the AWS credentials, region and endpoint from the
        sandbox's environment (by default everything but host-only variables passes).
    share : host directories under /tmp the function and extensions keep seeing at their
        own path (directories named in `env` values are shared anyway).
    mode : "on-demand" (default) or "managed-instances": Lambda Managed Instances, where
        `max_concurrency` invokes (default 4) run at once through awslambdaric's worker
        processes, nothing is frozen, timeouts are reported but not enforced, and
        extensions may register for SHUTDOWN only.
    namespace : None (default) uses a private mount namespace where it can (root);
        False never does (the fallback: TMPDIR, host paths).
    unprivileged : as root, the function and extensions run as Lambda's user (sbx_user1051,
        uid 993, gid 990): None (default) where the sandbox can, else as root with a WARNING;
        True, or `start()` raises SandboxStartError saying why not; False runs them as root.
    allow_host_packages : the function may import what the sandbox's own interpreter has
        installed (the host's virtualenv). False (default): only the task root, the layers'
        `python/` and the runtime's packages (awslambdaric, boto3; runtime_packages), as on
        Lambda, so a dependency missing from the function's zip fails here too.
    cpu : "auto" holds the environment to Lambda's memory-proportional CPU (1,769 MB = one
        vCPU) through a cgroup where the host allows it (root, a cpu controller, a mount
        namespace); "off" (default here, so a test at the default 128 MB does not run on 7% of
        a core; the command line's default is "auto") never does. REPORT's ``CPU Limit`` says which.
    stream : where START/END/REPORT and process output go (stdout by default);
        `echo=False` keeps them only in `logs`.
    """

    def __init__(self, opt_dir: Union[PathLike, Sequence[PathLike]], task_dir: PathLike, handler: str, *,
                 timeout_s: float = 3.0,
                 memory_mb: int = 128, env: Optional[Mapping[str, str]] = None, port: int = 0,
                 runtime_api_port: int = 0, function_name: str = "test_function",
                 stream: Optional[TextIO] = None, echo: bool = True, init_budget_s: float = 10.0,
                 shutdown_budget_s: float = 2.0, init: str = "on-invoke", runtime: str = "python",
                 isolated_env: bool = False,
                 share: Sequence[PathLike] = (), namespace: Optional[bool] = None, mode: str = "on-demand",
                 max_concurrency: Optional[int] = None, unprivileged: Optional[bool] = None,
                 allow_host_packages: bool = False, cpu: str = "off") -> None:
        self._merged_layers: Optional[Path] = None
        if not isinstance(opt_dir, (str, Path)):
            opt_dir = self._merge(opt_dir)
        try:
            self.config = SandboxConfig(Path(opt_dir), Path(task_dir), handler, timeout_s=timeout_s,
                                        memory_mb=memory_mb, env=dict(env or {}), port=port,
                                        runtime_api_port=runtime_api_port, function_name=function_name,
                                        init_budget_s=init_budget_s, shutdown_budget_s=shutdown_budget_s,
                                        init=init, runtime=runtime, isolated_env=isolated_env,
                                        share=tuple(Path(p) for p in share), namespace=namespace, mode=mode,
                                        unprivileged=unprivileged, allow_host_packages=allow_host_packages, cpu=cpu,
                                        max_concurrency=max_concurrency if max_concurrency is not None
                                        else (DEFAULT_MAX_CONCURRENCY if mode == "managed-instances" else 1))
        except SandboxConfigError:
            self._remove_merged()
            raise
        self._sink = LogSink(stream, echo=echo)
        self._lifecycle = Lifecycle(self.config, self._sink)
        self._host = self._lifecycle.host
        self._runtime_server: Optional[HttpServer] = None
        self._invoke_server: Optional[HttpServer] = None
        self._stopped = False

    def _merge(self, layers: Sequence[PathLike]) -> Path:
        """One /opt from several layers (a folder of this sandbox's, removed by `stop`)."""
        paths = [Path(p).resolve() for p in layers]
        if not paths:
            raise SandboxConfigError("no layer directory given")
        if len(paths) == 1:
            return paths[0]
        merged = Path(tempfile.mkdtemp(prefix="lambda_sandbox-layers-"))
        merged.chmod(0o755)  # as Lambda's /opt: readable by the function's user
        self._merged_layers = merged
        try:
            return merge_layers(paths, merged)
        except BaseException:
            self._remove_merged()
            raise

    def _remove_merged(self) -> None:
        if self._merged_layers is not None:
            shutil.rmtree(self._merged_layers, ignore_errors=True)
            self._merged_layers = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, wait_init: bool = True) -> "Sandbox":
        """Bind both servers; with `init="eager"` run the first init (waits for it unless
        `wait_init=False`)."""
        prepare_runtime_packages(self.config, self._host.log)
        api_router, invoke_router = Router(), Router()
        runtime_api.install(api_router, self._host)
        extensions_api.install(api_router, self._host)
        invoke_api.install(invoke_router, self._lifecycle)
        try:
            self._runtime_server = HttpServer(api_router, self.config.runtime_api_port)
            self._invoke_server = HttpServer(invoke_router, self.config.port)
        except OSError as exc:
            raise SandboxStartError(f"cannot bind the sandbox's ports: {exc}") from exc
        self._runtime_server.start()
        self._invoke_server.start()
        try:
            self._lifecycle.start(self._runtime_server.address)
        except SandboxStartError:
            self._stopped = True
            for server in (self._invoke_server, self._runtime_server):
                server.stop()
            self._remove_merged()
            raise
        if wait_init and not self._lifecycle.initialised.wait(self.config.init_budget_s + 5):
            self.stop()
            raise SandboxStartError("init did not finish")
        return self

    def stop(self) -> None:
        """SIGTERM the runtime, SHUTDOWN (spindown) the extensions, kill what is left."""
        if self._stopped:
            return
        self._stopped = True
        self._lifecycle.stop(timeout=self.config.shutdown_budget_s + 5)
        for server in (self._invoke_server, self._runtime_server):
            if server is not None:
                server.stop()
        self._remove_merged()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._invoke_server is not None, "sandbox not started"
        return self._invoke_server.port

    @property
    def runtime_api(self) -> str:
        """host:port of the Runtime/Extensions/Telemetry APIs (AWS_LAMBDA_RUNTIME_API)."""
        assert self._runtime_server is not None, "sandbox not started"
        return self._runtime_server.address

    @property
    def tmp_dir(self) -> Path:
        """The host directory that the function and extensions see as /tmp."""
        fs = self._host.fs
        assert fs is not None, "sandbox not started"
        return fs.tmp

    @property
    def invoke_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{invoke_api.INVOKE_PATH}"

    # --- invoking -------------------------------------------------------------------------
    def invoke(self, payload: Any = None, *, raw: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None,
               timeout: Optional[float] = None) -> InvokeResult:
        """POST to the invoke endpoint, as a client of the function would."""
        body = raw if raw is not None else json.dumps({} if payload is None else payload).encode()
        wait = timeout if timeout is not None else self.config.timeout_s * 3 + self.config.init_budget_s + 5
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=wait)
        started = time.monotonic()
        try:
            conn.request("POST", invoke_api.INVOKE_PATH, body, {"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        reply_headers = {k: v for k, v in response.getheaders()}
        return InvokeResult(response.status, data, reply_headers, reply_headers.get("X-Amzn-RequestId", ""),
                            time.monotonic() - started)

    # --- observing ------------------------------------------------------------------------
    @property
    def reports(self) -> List[Report]:
        with self._host.cond:
            return list(self._host.reports)

    def wait_for_report(self, request_id: str, timeout: float = 10.0) -> Report:
        """The REPORT of `request_id`, once every extension has called next."""
        host = self._host
        deadline = time.monotonic() + timeout
        with host.cond:
            host.wait_until(lambda: any(r.request_id == request_id for r in host.reports), deadline,
                            interruptible=False)
            for report in host.reports:
                if report.request_id == request_id:
                    return report
        raise TimeoutError(f"no REPORT for {request_id} within {timeout} s")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once no invoke is in progress (the environment is frozen or gone)."""
        host, lc = self._host, self._lifecycle
        deadline = time.monotonic() + timeout
        with host.cond:
            host.wait_until(lc.idle, deadline, interruptible=False)
            return lc.idle()

    @property
    def logs(self) -> List[LogLine]:
        return list(self._sink.lines)

    def wait_for_log(self, text: str, timeout: float = 10.0, source: Optional[str] = None) -> LogLine:
        """The first line containing `text` (optionally from `source`), waiting up to `timeout`."""
        line = self._sink.wait_for(lambda l: text in l.text and (source is None or l.source == source), timeout)
        if line is None:
            raise TimeoutError(f"no log line containing {text!r} within {timeout} s")
        return line

    def pids(self) -> List[int]:
        """Live pids of the current environment (runtime, extensions and their children)."""
        env = self._host.env
        if env is None:
            return []
        return [pid for proc in env.processes() if proc.alive for pid in proc.group_pids()]

    @property
    def frozen(self) -> bool:
        env = self._host.env
        return bool(env and env.frozen)
