"""Start-up and the event loop of the defer-runner extension.

Order matters: the socket is opened before ``register`` (the runtime starts as soon as every
extension has registered, and the handler may dial at once), Powertools loads only after
registering, and the loop ends only on SHUTDOWN: any failure inside an invoke is logged and
the loop calls ``next`` again, because an extension that exits is a crash that resets the
environment.

The AWS clients (the lean transport's for SQS, SNS and EventBridge; botocore only for the
services and environments that need it, most of the extension's start when it loads) load
where they cost no caller anything (``SdkLoader``): on demand, init is the cold start a caller waits for, so
it loads on a thread started when the first event arrives, beside the first invoke, and a
drain that needs a client meanwhile waits for it, never past its stop; where init runs ahead
of any request (provisioned concurrency, SnapStart, Managed Instances), inside init, as the
snapshot or the warm pool then holds it. docs/performance.md has the measurements.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from handler_lib import config as cfg

from . import continuous
from .lambda_api import (ERR_CONFIG, ERR_INIT, ERR_SOCKET, ExtensionsApiError, ExtensionsClient,
                         InvokeEvent, RegisteredExtension, UnreadableEvent)
from .listener import listen

EVENTS = ["INVOKE", "SHUTDOWN"]
NEXT_RETRIES = 5
WARMUP_WAIT_S = 3.0
#: After a crash, the FIFO items the journal replays are delivered before the init ends, for
#: at most this long: no invoke's handler runs before this extension's first ``next``, so
#: nothing the function defers later (or delivers itself, with this extension stopped)
#: overtakes them in their groups. A re-init after a reset runs inside the invoke that found
#: the environment gone, against its timeout: only a start that replays FIFO items pays it,
#: only for those items, and none waits out a backoff here.
REPLAYED_FIFO_INIT_S = 0.5
#: AWS_LAMBDA_INITIALIZATION_TYPE values whose init runs ahead of any request: there the AWS
#: SDK loads inside init. On demand (and when unset) it loads once the first event arrives.
SDK_IN_INIT = frozenset({"provisioned-concurrency", "snap-start", "lambda-managed-instances"})


def main() -> None:
    os.environ[cfg.ENV_IN_RUNNER] = "1"  # tasks imported here must never dial the socket
    name = os.environ.get("DEFER_EXTENSION_NAME") or "defer-runner"
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not runtime_api:
        print("defer-runner: AWS_LAMBDA_RUNTIME_API is not set; run me as a Lambda extension", file=sys.stderr)
        sys.exit(2)
    problem: Optional[Tuple[str, str]] = None  # (error type, message) to report
    try:
        config = cfg.load()
    except cfg.ConfigError as exc:
        config, problem = cfg.Config(), (ERR_CONFIG, str(exc))
    listener = None
    if problem is None:
        try:
            listener = listen(config.socket_path)
        except OSError as exc:
            problem = (ERR_SOCKET, f"cannot listen on {config.socket_path}: {exc}")
    proxy = _runtime_proxy(runtime_api, config) if problem is None else None
    extension, on_lmi = continuous.register(ExtensionsClient(runtime_api), name, EVENTS)
    if problem is not None:
        _fail_init(extension, *problem)
    if proxy is not None:
        proxy.start()  # the runtime starts now, and may call through it at once
    sdk = SdkLoader(in_init=on_lmi or sdk_in_init())
    try:
        runner = _build(config, listener, extension, proxy, telemetry=not on_lmi, sdk=sdk)
    except Exception as exc:  # noqa: BLE001 - reported to Lambda, which fails the init
        _fail_init(extension, ERR_INIT, f"{type(exc).__name__}: {exc}")
    if on_lmi:  # Managed Instances: no INVOKE events, deliver as items arrive
        runner = continuous.ContinuousDelivery(runner)
        runner.start()
    _loop(extension, runner, sdk)


def _fail_init(extension: RegisteredExtension, error_type: str, message: str) -> None:
    print(f"defer-runner: {error_type}: {message}", file=sys.stderr, flush=True)
    try:
        extension.init_error(error_type, message)
    finally:
        os._exit(1)


def _runtime_proxy(runtime_api: str, config: cfg.Config) -> Any:
    """The Runtime API proxy, when the function starts its runtime through a wrapper."""
    if not os.environ.get("AWS_LAMBDA_EXEC_WRAPPER"):
        return None
    from .runtime_proxy import RuntimeApiProxy

    try:
        return RuntimeApiProxy(runtime_api, config.socket_path)
    except (OSError, ValueError) as exc:
        print(f"defer-runner: no Runtime API proxy ({exc}); end of invoke from the other signals",
              file=sys.stderr, flush=True)
        return None


def sdk_in_init() -> bool:
    """Whether this environment's init runs ahead of any request (``SDK_IN_INIT``)."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "") in SDK_IN_INIT


class SdkLoader:
    """Makes the drainer (the drain's modules) if nothing has yet, then loads what the clients
    need, then the clients the queued items need, on a thread of its own.

    First ``factory.preload()``: for the lean transport (SQS, SNS, EventBridge) its TLS context
    and credentials, nothing heavy; botocore and its session only where no service can be lean
    (``DEFER_TRANSPORT=botocore``, a profile...). Then the clients: in init (``in_init``), every
    lean one, and every botocore one where botocore was loaded anyway, before the first
    ``next`` (bounded by WARMUP_WAIT_S; the drain finishes what is left). Otherwise, from the
    first event on, the clients of the kinds queued by then (the first invoke's items, as a
    rule). A botocore client (Lambda, Step Functions, S3, or a service the lean transport
    leaves to botocore) is made only once an item needs it, in init too: an extension whose
    items are all SQS, SNS or EventBridge never imports botocore. A client no item has asked
    for yet is made on first use. A failure is logged; each sink then tries again on its next
    batch, whose items back off as for an unreachable endpoint (``Defer.TransportError``).
    """

    def __init__(self, in_init: Optional[bool] = None) -> None:
        self.in_init = sdk_in_init() if in_init is None else in_init
        self._factory: Any = None
        self._sinks: Dict[str, Any] = {}
        self._queue: Any = None
        self._prepare: Optional[Callable[[], Any]] = None
        self._thread: Optional[threading.Thread] = None
        self._botocore_preloaded = False

    def bind(self, factory: Any, sinks: Dict[str, Any], queue: Any) -> None:
        self._factory, self._sinks, self._queue = factory, sinks, queue

    def prepare_with(self, prepare: Callable[[], Any]) -> None:
        """What to run first on the thread: it makes the drainer, which binds the factory."""
        self._prepare = prepare

    def start(self) -> None:
        """Start loading, once (later calls do nothing; one that found no thread to be had
        tries again, and meanwhile each sink loads what it needs when it first sends)."""
        if self._thread is not None or (self._factory is None and self._prepare is None):
            return
        thread = threading.Thread(target=self._run, name="defer-sdk", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had: never a reason to stop the extension
            _log().warning("could not start loading the AWS SDK: %s", exc)
            return
        self._thread = thread

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _wanted(self) -> List[str]:
        wanted = {entry.item.kind for entry in self._queue.snapshot()} & set(self._sinks)
        if self.in_init:
            wanted.update(kind for kind, sink in self._sinks.items()
                          if self._botocore_preloaded or not self._factory.uses_botocore(sink.service))
        return sorted(wanted)

    def _run(self) -> None:
        started = time.monotonic()
        made: Set[str] = set()
        try:
            if self._prepare is not None:
                self._prepare()
            self._factory.preload()
            self._botocore_preloaded = self._factory.botocore_loaded()  # no lean transport here
            loaded_ms = (time.monotonic() - started) * 1000
            while True:  # items may arrive while a client is made
                wanted = [kind for kind in self._wanted() if kind not in made]
                if not wanted:
                    break
                for kind in wanted:
                    self._sinks[kind].client  # noqa: B018 - made now, kept by the sink
                made.update(wanted)
        except Exception as exc:  # noqa: BLE001 - a thread of its own: nothing may escape it
            _log().warning("could not load the AWS SDK (%s: %s); each sink tries again when it sends",
                           type(exc).__name__, exc)
            return
        _log().info("AWS SDK loaded", extra={"sdk_in_init": self.in_init, "sdk_loaded_ms": round(loaded_ms, 1),
                                             "sdk_ready_ms": round((time.monotonic() - started) * 1000, 1),
                                             "clients": sorted(made),
                                             "botocore": self._factory.botocore_loaded()})


def _build(config: cfg.Config, listener: Any, extension: RegisteredExtension, proxy: Any = None,
           telemetry: bool = True, sdk: Optional[SdkLoader] = None) -> Any:
    """Everything but the registration. `telemetry=False` on Managed Instances: they send no
    `platform.runtimeDone` and take only schema 2025-01-29, so a subscription buys nothing.
    `sdk` says where the AWS SDK loads (default: from AWS_LAMBDA_INITIALIZATION_TYPE)."""
    from .channel import ChannelServer
    from handler_lib.engine.journal import LETTER_SUFFIX, Journal
    from .logs import setup_logging
    from .metrics import DrainMetrics
    from handler_lib.engine.pending import PendingQueue
    from .runner import Runner
    from .telemetry import TelemetryListener

    setup_logging(config)
    log = _log()
    channel = ChannelServer(config.socket_path, listener)
    journal = Journal(config.journal_dir)
    queue = PendingQueue(journal, config.max_queued_bytes)
    for item in journal.replayed:
        queue.add(item, journal=False)
    loader = sdk if sdk is not None else SdkLoader()

    def make_drainer() -> Any:
        """The drain and what it sends with, made on first use: on the SDK's thread once the
        first event came, or by the first drain if that comes first; in init where init runs
        ahead of any request. Taking items in needs none of it."""
        from handler_lib import wire
        from handler_lib._dispatch import DISPATCHER
        from handler_lib.engine.clients import ClientFactory
        from handler_lib.engine.drain import Drainer
        from handler_lib.engine.sinks import make_sinks
        from handler_lib.engine.tasks import LAMBDA_LAYERS_ROOT, TaskRunner

        factory = ClientFactory(config)
        sinks = make_sinks(factory, config)
        loader.bind(factory, sinks, queue)
        # Task modules come from the function's code and the layers' python folders: those of
        # Lambda's /opt and of the layer this extension came with (its launcher says where).
        layers = [p for p in (os.environ.get("DEFER_LAYER_ROOT"), LAMBDA_LAYERS_ROOT) if p]
        tasks = TaskRunner(layer_roots=layers, handler_defined=lambda: DISPATCHER.handler_defined,
                           before_import=run_site_pth_files)

        def queue_here(item: wire.WorkItem) -> None:  # a task that defers more work queues it here
            runner.on_item(item)

        DISPATCHER.local_sink = queue_here  # tasks run only in the drain: set before its first
        return Drainer(queue, sinks, tasks, config)

    runner = Runner(config, queue, make_drainer, channel,
                    DrainMetrics(extension.registration.function_name))
    loader.prepare_with(lambda: runner.drainer)
    if loader.in_init:
        loader.start()  # beside the rest of the set-up

    channel.start(runner.handlers())
    if proxy is not None:
        runner.proxy_active = True
        proxy.subscribe(runner.on_response_posted)
    if telemetry:
        listener = TelemetryListener(runner.on_runtime_done)
        port = listener.start()
        status, reply = extension.subscribe_telemetry(port, ["platform"])
        runner.telemetry_active = status == 200
        if not runner.telemetry_active:  # stop() waits for the server's poll (0.5 s): not here
            threading.Thread(target=listener.stop, name="defer-telemetry-stop", daemon=True).start()
    if not config.dlq_url:
        log.warning("DEFER_DLQ_URL is not set: items that exhaust their attempts are logged and counted only")
    log.info("defer-runner ready", extra={"socket": config.socket_path, "telemetry": runner.telemetry_active,
                                          "runtime_proxy": proxy.address if proxy is not None else None,
                                          "replayed": len(journal.replayed), "max_attempts": config.max_attempts,
                                          "deadline_margin_ms": config.deadline_margin_ms})
    if loader.in_init:  # bounded: a slow start must not fail the init, the drain finishes the clients
        loader.join(WARMUP_WAIT_S)
    fifo = {item.id for item in journal.replayed
            if getattr(item, "group_id", None) is not None and not item.id.endswith(LETTER_SUFFIX)}
    if fifo:  # (a letter to a FIFO DLQ is a group of its own: no order to keep)
        _deliver_replayed_fifo(runner, fifo)
    return runner


def _deliver_replayed_fifo(runner: Any, keys: Set[str]) -> None:
    """Deliver the replayed FIFO items before the first ``next``; what fails waits as any item."""
    log = _log()
    try:
        stop_at = time.monotonic() + REPLAYED_FIFO_INIT_S  # building the drainer counts too
        report = runner.drainer.drain(stop_at, only=keys)
        runner._account(report, "init")
    except Exception:  # noqa: BLE001 - the first invoke's drain delivers them instead
        log.exception("could not deliver the replayed FIFO items in init")
        return
    left = sum(1 for entry in runner.queue.snapshot() if entry.item.id in keys)
    fields = {"fifo_replayed": len(keys), "fifo_left": left, "duration_ms": round(report.duration_ms, 1)}
    if left:
        log.warning("%d replayed FIFO items could not be delivered before the init's end: a later item of "
                    "their group that the function delivers itself may overtake them", left, extra=fields)
    else:
        log.info("replayed FIFO items delivered before the init's end", extra=fields)


def run_site_pth_files() -> None:
    """Run the ``.pth`` files of the interpreter's site-packages that the launcher's -S
    skipped (``SITE_PACKAGES``), as site would have: a task imports what the function imports,
    also a package only a ``.pth`` makes importable (an editable install, a namespace package)."""
    from . import SITE_PACKAGES

    if SITE_PACKAGES:
        import site

        for folder in SITE_PACKAGES:
            site.addsitedir(folder)


def _log() -> Any:
    """The extension's logger; logging loads after registering, off the runtime's start."""
    import logging

    return logging.getLogger("defer_runner")


def _loop(extension: RegisteredExtension, runner: Any, sdk: Optional[SdkLoader] = None) -> None:
    log = _log()
    failures = unreadable = 0
    while True:
        try:
            event = extension.next_event()
            failures = unreadable = 0
        except UnreadableEvent as exc:  # exiting would be a crash: ask for the next one instead
            unreadable += 1
            log.warning("cannot read the event from next; asking for the next one", extra={"error": str(exc)})
            time.sleep(min(1.0, 0.05 * unreadable))  # an API that only says this is not spun on
            continue
        except (ExtensionsApiError, OSError) as exc:
            failures += 1
            if failures > NEXT_RETRIES or (isinstance(exc, ExtensionsApiError) and exc.status >= 500):
                log.critical("the Extensions API is gone; exiting", extra={"error": str(exc)})
                try:
                    runner.on_api_gone(str(exc))
                except Exception:  # noqa: BLE001 - the exit must happen, but not silently
                    log.exception("could not list the items held at exit")
                finally:
                    _exit(1)
            time.sleep(0.05 * failures)
            continue
        if sdk is not None:  # the first event: the init is over (started in init, a no-op)
            sdk.start()
        if isinstance(event, InvokeEvent):
            try:  # a new invoke: an endpoint that was unreachable is tried again at once
                if runner.drainer_built:  # (none was, before the first drain)
                    runner.drainer.probe_unreachable()
            except Exception:  # noqa: BLE001 - the invoke is handled all the same
                log.exception("could not reschedule the items of an unreachable endpoint")
            try:
                runner.on_invoke(event)
            except Exception:  # noqa: BLE001 - never let one invoke end the extension
                log.exception("invoke handling failed; items stay queued", extra={"request_id": event.request_id})
            continue
        try:
            runner.on_shutdown(event)
        except Exception:  # noqa: BLE001
            log.exception("shutdown drain failed")
        finally:
            runner.channel.close()
            _exit(0)


def _exit(code: int) -> None:
    """Exit now: worker threads stuck in a call or a task must not hold the process."""
    import logging

    for handler in logging.getLogger().handlers + _log().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
