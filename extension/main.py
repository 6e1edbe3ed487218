"""Start-up and the event loop of the defer-runner extension.

Order matters: the socket is opened before ``register`` (the runtime starts as soon as every
extension has registered, and the handler may dial at once), botocore and Powertools load only
after registering (the AWS clients are made before the first ``next``), and the loop ends
only on SHUTDOWN: any failure inside an invoke is logged and the loop calls ``next`` again,
because an extension that exits is a crash that resets the environment.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Optional, Tuple

from handler_lib import config as cfg

from . import continuous
from .lambda_api import (ERR_CONFIG, ERR_INIT, ERR_SOCKET, ExtensionsApiError, ExtensionsClient,
                         InvokeEvent, RegisteredExtension)
from .listener import listen

EVENTS = ["INVOKE", "SHUTDOWN"]
NEXT_RETRIES = 5
WARMUP_WAIT_S = 3.0


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
    try:
        runner = _build(config, listener, extension, proxy, telemetry=not on_lmi)
    except Exception as exc:  # noqa: BLE001 - reported to Lambda, which fails the init
        _fail_init(extension, ERR_INIT, f"{type(exc).__name__}: {exc}")
    if on_lmi:  # Managed Instances: no INVOKE events, deliver as items arrive
        runner = continuous.ContinuousDelivery(runner)
        runner.start()
    _loop(extension, runner)


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


def _build(config: cfg.Config, listener: Any, extension: RegisteredExtension, proxy: Any = None,
           telemetry: bool = True) -> Any:
    """Everything but the registration. `telemetry=False` on Managed Instances: they send no
    `platform.runtimeDone` and take only schema 2025-01-29, so a subscription buys nothing."""
    from handler_lib import wire
    from handler_lib._dispatch import DISPATCHER

    from .channel import ChannelServer
    from handler_lib.engine.clients import ClientFactory
    from handler_lib.engine.drain import Drainer
    from handler_lib.engine.journal import Journal
    from .logs import setup_logging
    from .metrics import DrainMetrics
    from handler_lib.engine.pending import PendingQueue
    from .runner import Runner
    from handler_lib.engine.sinks import make_sinks
    from handler_lib.engine.tasks import LAMBDA_LAYERS_ROOT, TaskRunner
    from .telemetry import TelemetryListener

    setup_logging(config)
    log = _log()
    channel = ChannelServer(config.socket_path, listener)
    journal = Journal(config.journal_dir)
    queue = PendingQueue(journal, config.max_queued_bytes)
    for item in journal.replayed:
        queue.add(item, journal=False)
    sinks = make_sinks(ClientFactory(config))
    warmup = threading.Thread(target=lambda: [s.client for s in sinks.values()], name="defer-warmup",
                              daemon=True)
    warmup.start()  # beside the rest of the set-up
    # Task modules come from the function's code and the layers' python folders: those of
    # Lambda's /opt and of the layer this extension came with (its launcher says where).
    layers = [p for p in (os.environ.get("DEFER_LAYER_ROOT"), LAMBDA_LAYERS_ROOT) if p]
    tasks = TaskRunner(layer_roots=layers, handler_defined=lambda: DISPATCHER.handler_defined)
    drainer = Drainer(queue, sinks, tasks, config)
    runner = Runner(config, queue, drainer, channel,
                    DrainMetrics(extension.registration.function_name))

    def queue_here(item: wire.WorkItem) -> None:  # a task that defers more work queues it here
        runner.on_item(item)

    DISPATCHER.local_sink = queue_here
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
    # The clients are made before the first `next`, inside init, which overlaps the runtime's
    # own start; made after it, they raced the first invoke and the first drain (billed) paid
    # for most of them (bench/coldstart.py). Bounded: a slow start must not fail the init, the
    # drain finishes the clients itself.
    warmup.join(WARMUP_WAIT_S)
    return runner


def _log() -> Any:
    """The extension's logger; logging loads after registering, off the runtime's start."""
    import logging

    return logging.getLogger("defer_runner")


def _loop(extension: RegisteredExtension, runner: Any) -> None:
    log = _log()
    failures = 0
    while True:
        try:
            event = extension.next_event()
            failures = 0
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
        if isinstance(event, InvokeEvent):
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
