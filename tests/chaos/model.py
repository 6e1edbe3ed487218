"""The attack machine: random invokes and faults against the real parts, and a checker of the
one invariant (docs/guarantees.md, "The invariant").

Each Hypothesis example is one Lambda environment: the local sandbox with the built layer
(``DEFER_TEST_LAYER`` names another, e.g. an older build, to measure the harness's teeth),
every AWS call through the fault proxy to moto server. Rules defer items of every kind
(SQS, SNS, FIFO groups, tasks, an SQS message from a forked child, calls that must be
refused: oversize or with a character SQS refuses, nested handlers, ``defer.after`` work behind a callable raising a BaseException) and
inject faults (SIGKILL of the extension between and during invokes, SIGSTOP during one, a
journal disk that fills up and empties (a tmpfs of its own),
throttling, 5xx, failed batch entries, latency, expired credentials on every call, function
timeouts). At the end the environment is shut down (SHUTDOWN) and the checker reads what
actually happened: the queues and the dead-letter queue in moto, the sandbox's REPORT lines,
the ids each call returned. It never reads the extension's own counters.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from lambda_sandbox import Sandbox

FUNCTION = Path(__file__).parent / "function"
TIMEOUT_S = 3
#: ``CHAOS_WITHOUT``: what a run leaves out (item kinds, and ``nested`` / ``after_raise``), to
#: look past what it already found: Hypothesis shrinks every failure to the simplest one, so
#: against an old layer a one-step finding hides every longer one.
WITHOUT = frozenset(filter(None, os.environ.get("CHAOS_WITHOUT", "").split(",")))
KINDS = tuple(k for k in ("sqs", "sns", "fifo", "task", "refused", "forbidden", "forked") if k not in WITHOUT)
NESTED = st.just(False) if "nested" in WITHOUT else st.booleans()
AFTER_RAISES = [None] if "after_raise" in WITHOUT else [None, "SystemExit", "KeyboardInterrupt"]
#: kinds whose call must raise: over SQS's size limit, and a body SQS refuses (U+FFFF)
REFUSED_KINDS = ("refused", "forbidden")
GROUPS = ("g1", "g2")
#: A flood: this many SQS messages of 250 KB (9 MB) pass the unix socket's buffers (SO_SNDBUF
#: 4 MiB, doubled by the kernel) of a connection whose reader is stopped.
FLOOD_ITEMS = 36
#: What an invoke may spend in an init before its START (a reset environment inits again).
INIT_ALLOWANCE_S = 3.0


@dataclass
class Item:
    k: str
    kind: str
    step: int
    group: Optional[str] = None
    id: Optional[str] = None
    refused: Optional[str] = None
    soft: bool = False  # deferred by defer.after work: its id is never seen by the caller
    crashed: bool = False  # deferred in an invoke its extension crashed in (docs: may be lost)


@dataclass
class Context:
    """What one example needs from the test session: where moto and the proxy are."""

    layer: Path
    moto_endpoint: str
    proxy: Any  # tests.support.fault_proxy.FaultProxy
    make_resources: Any
    tmp: Path
    log: List[Dict[str, Any]] = field(default_factory=list)  # every example's steps, for the report
    #: run the runtime under the layer's exec wrapper (its Runtime API proxy in the extension)
    exec_wrapper: bool = False
    #: hold items of an invoke the extension crashed in to the invariant too (the documented
    #: exception, Extension.Crash resets the environment with the function in it, is judged)
    strict_crashes: bool = False


class Verdict(AssertionError):
    pass


items_strategy = st.lists(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(GROUPS), st.booleans()), min_size=1, max_size=6)


def machine(ctx: Context) -> type:
    """The state machine class for this session (Hypothesis builds one instance per example)."""

    class Chaos(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.items: List[Item] = []
            self.steps: List[str] = []
            self.faulted = False  # a kill, a stop or a timeout: defer.after work may be lost
            self.expected_timeouts: set = set()
            self.ctx = ctx
            self.n = 0
            self.started = time.monotonic()
            self.box: Optional[Sandbox] = None
            self.faults_on = False

        @initialize()
        def start(self) -> None:
            ctx.proxy.reset()
            self.res = ctx.make_resources()
            run = ctx.tmp / f"env-{len(ctx.log)}-{os.getpid()}"
            run.mkdir(parents=True, exist_ok=True)
            # The journal on a small disk of its own (a tmpfs outside the run's folder: the sandbox
            # binds each folder it hands over without what is mounted below it), for disk_full.
            self.disk = _small_disk()
            self.filler: Optional[Path] = None
            journal = self.disk if self.disk is not None else run / "journal"
            env = {**self.res.env(), "AWS_ENDPOINT_URL": ctx.proxy.endpoint_url,
                   "DEFER_SOCKET": str(run / "defer.sock"), "DEFER_JOURNAL_DIR": str(journal),
                   "DEFER_MAX_QUEUED_MB": "1"}
            if ctx.exec_wrapper:
                env["AWS_LAMBDA_EXEC_WRAPPER"] = "/opt/defer-runner/exec-wrapper"
            self.box = Sandbox(ctx.layer, FUNCTION, "app.handler", timeout_s=TIMEOUT_S, env=env, echo=False).start()
            self.record = {"steps": [], "started": time.time()}
            self.run_dir = run
            ctx.log.append(self.record)

        # -- helpers ------------------------------------------------------------------------
        def _note(self, text: str) -> None:
            self.steps.append(text)
            self.record["steps"].append({"t": round(time.monotonic() - self.started, 3), "step": text})

        def _items(self, spec: List[Tuple[str, str, bool]]) -> List[Dict[str, Any]]:
            out = []
            for kind, group, big in spec:
                self.n += 1
                item = Item(f"k{self.n}", kind, len(self.steps), group if kind == "fifo" else None)
                self.items.append(item)
                out.append({"k": item.k, "kind": kind, "g": group, "big": big and kind in ("sqs", "sns")})
            return out

        def _invoke(self, event: Dict[str, Any], on_response: Optional[Callable[[], None]] = None) -> Optional[str]:
            """Invoke; record the ids each call returned. ``on_response`` runs once the response
            is in, before waiting for the invoke's REPORT."""
            assert self.box is not None
            nonce = event.setdefault("nonce", f"{os.getpid()}-{len(ctx.log)}-{len(self.steps)}")
            try:
                result = self.box.invoke(event)
            finally:
                if on_response is not None:
                    on_response()
            reply: Optional[Dict[str, Any]] = None
            if result.status == 200 and result.function_error is None:
                reply = result.json()
            crashed = False
            if result.request_id:
                try:
                    report = self.box.wait_for_report(result.request_id, timeout=TIMEOUT_S + 10)
                    # An extension killed between invokes is found dead in the next one, maybe
                    # after the function answered (early response): the platform's REPORT says so,
                    # and the reset ends the function's own end of the invoke as a crash does.
                    crashed = report.error_type == "Extension.Crash"
                except TimeoutError:
                    pass
            if reply is None:  # the handler may have returned though the invoke failed (an
                wait_until = time.monotonic() + 1.0  # extension crash): its ids are in its log
                while reply is None and time.monotonic() < wait_until:
                    for line in list(self.box.logs):  # the last one says the most
                        if line.text.startswith(f"chaos-out {nonce} "):
                            reply = json.loads(line.text.split(" ", 2)[2])
                    time.sleep(0.05)
            if reply is not None and (result.status != 200 or result.function_error is not None):
                try:
                    crashed = crashed or result.json().get("errorType") == "Extension.Crash"
                except (ValueError, AttributeError):
                    pass
            if reply is not None:
                by_k = {i.k: i for i in self.items}
                for k, item_id in reply.get("ids", {}).items():
                    by_k[k].id = item_id
                    by_k[k].crashed = crashed
                for k, why in reply.get("refused", {}).items():
                    by_k[k].refused = why
            return result.request_id

        def _extension(self) -> Optional[Any]:
            env = self.box._host.env if self.box is not None else None  # the rig's own state
            if env is None:
                return None
            return next((s.process for s in env.extensions if s.process is not None and s.process.alive), None)

        # -- rules ---------------------------------------------------------------------------
        @rule(spec=items_strategy, nested=NESTED, after=st.integers(0, 2),
              after_raise=st.sampled_from(AFTER_RAISES))
        def invoke(self, spec, nested, after, after_raise) -> None:
            event = {"items": self._items(spec), "nested": nested}
            if after:
                soft = self._items([("sqs", "g1", False)] * after)
                for entry in soft:
                    next(i for i in self.items if i.k == entry["k"]).soft = True
                event.update(after=soft, after_raise=after_raise)
            self._note(f"invoke {[(i['kind'], i['g'] if i['kind'] == 'fifo' else '') for i in event['items']]}"
                       f"{' nested' if nested else ''}{f' after={after} raise={after_raise}' if after else ''}")
            self._invoke(event)

        @rule(spec=items_strategy)
        def invoke_past_its_timeout(self, spec) -> None:
            event = {"items": self._items(spec), "sleep": TIMEOUT_S + 0.5}
            self._note(f"invoke that times out {[i['kind'] for i in event['items']]}")
            self.faulted = True
            request_id = self._invoke(event)
            self.expected_timeouts.add(request_id)

        @precondition(lambda self: self.box is not None)
        @rule()
        def kill_extension(self) -> None:
            process = self._extension()
            self._note("SIGKILL the extension" + ("" if process else " (none running)"))
            if process is not None:
                self.faulted = True
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        @precondition(lambda self: self.disk is not None)
        @rule(full=st.booleans())
        def disk_full(self, full) -> None:
            """The journal's disk (a tmpfs of its own) fills up, or empties again."""
            assert self.disk is not None
            self._note(f"the journal's disk {'fills up' if full else 'empties'}")
            if full and self.filler is None:
                self.filler = self.disk / "filler"
                try:
                    with open(self.filler, "wb", buffering=0) as out:
                        for chunk in (1 << 20, 1 << 12, 1):  # to the last byte
                            try:
                                while True:
                                    out.write(b"\0" * chunk)
                            except OSError:
                                pass  # ENOSPC
                except OSError:
                    pass  # full already: not even the filler's inode
                self.faulted = True
            elif not full and self.filler is not None:
                self.filler.unlink(missing_ok=True)
                self.filler = None

        @rule(spec=items_strategy)
        def kill_the_extension_during_an_invoke(self, spec) -> None:
            """SIGKILL while the handler sleeps between deferring the first half of its items
            and the second."""
            items = self._items(spec)
            half = (len(items) + 1) // 2
            mark = f"chaos-out {os.getpid()}-{len(ctx.log)}-{len(self.steps)}-kill "  # printed once
            event = {"items": items[:half], "sleep": 0.6, "then": items[half:], "nonce": mark.split()[1]}
            self._note(f"SIGKILL the extension during an invoke {[i['kind'] for i in event['items']]}, "
                       f"then {[i['kind'] for i in event['then']]}")
            self.faulted = True
            self._signal_during(event, signal.SIGKILL, ready=lambda: any(
                line.text.startswith(mark) for line in list(self.box.logs)), within_s=5)

        @rule(spec=items_strategy, flood=st.booleans())
        def stop_the_extension_during_an_invoke(self, spec, flood=False) -> None:
            """SIGSTOP once the environment is thawed for the invoke, SIGCONT after its response.
            ``flood``: the handler also defers more than the socket's buffers hold (FLOOD_ITEMS
            SQS messages near SQS's size limit), so a send into the stopped extension must
            give up rather than wait."""
            items = self._items(spec)
            if flood:
                for entry in self._items([("sqs", "g1", False)] * FLOOD_ITEMS):
                    entry["big"] = "flood"
                    items.append(entry)
            event = {"items": items, "pre_sleep": 0.3}
            self._note(f"SIGSTOP the extension during an invoke {[i['kind'] for i in event['items'][:len(spec)]]}"
                       f"{f' and {FLOOD_ITEMS} SQS messages of 250 KB' if flood else ''}")
            self.faulted = True
            # In the invoke, not before it: an environment the invoke finds reset inits first,
            # and a stop there (slow on a loaded machine) is an init timeout, not this fault.
            self._signal_during(event, signal.SIGSTOP, ready=self._in_an_invoke, within_s=2 + INIT_ALLOWANCE_S,
                                delay_s=0.1, resume=True)

        def _in_an_invoke(self) -> bool:
            env = self.box._host.env if self.box is not None else None  # the rig's own state
            return env is not None and not env.frozen and env.phase.name == "INVOKE"

        def _signal_during(self, event: Dict[str, Any], sig: int, ready: Callable[[], bool], within_s: float,
                           delay_s: float = 0.0, resume: bool = False) -> None:
            """Invoke with ``event`` and send ``sig`` to the extension once ``ready()`` holds (and
            ``delay_s`` more), at most ``within_s`` into the invoke; with ``resume``, SIGCONT it
            once the response is in."""
            done = threading.Event()
            signalled: List[int] = []

            def watch() -> None:
                until = time.monotonic() + within_s
                while time.monotonic() < until and not done.is_set():
                    process = self._extension()
                    if process is not None and ready():
                        time.sleep(delay_s)
                        try:
                            os.kill(process.pid, sig)
                            signalled.append(process.pid)
                        except ProcessLookupError:
                            pass
                        return
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch, daemon=True)

            def responded() -> None:
                done.set()
                watcher.join(3)
                for pid in signalled if resume else []:
                    try:
                        os.kill(pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass

            watcher.start()
            self._invoke(event, on_response=responded)

        @rule(kind=st.sampled_from(["throttle", "5xx", "fail_entries", "latency", "expired_token"]),
              action=st.sampled_from(["SendMessageBatch", "PublishBatch", "SendMessage"]),
              calls=st.integers(1, 4))
        def aws_fault(self, kind, action, calls) -> None:
            if kind == "expired_token":  # the credentials expire for every call, letters too
                action = "every call"
            self._note(f"AWS fault: {kind} on {action} x{calls}")
            self.faults_on = True
            proxy = ctx.proxy
            if kind == "expired_token":
                proxy.error(None, "ExpiredToken", 403, calls=calls, message="The security token included "
                            "in the request is expired")
            elif kind == "throttle":
                proxy.throttle(action, calls=calls)
            elif kind == "5xx":
                proxy.error(action, "InternalError", 500, calls=calls)
            elif kind == "fail_entries" and action.endswith("Batch"):
                proxy.fail_entries(action, indexes={0}, calls=calls)
            elif kind == "latency":
                proxy.set_latency(0.4, action)

        @precondition(lambda self: self.faults_on)
        @rule()
        def faults_end(self) -> None:
            self.faults_on = False
            self._note("AWS faults cleared")
            ctx.proxy.clear()

        def teardown(self) -> None:
            if self.box is None:
                return
            ctx.proxy.clear()
            if self.filler is not None:  # the disk empties, as AWS's faults end
                self.filler.unlink(missing_ok=True)
                self.filler = None
            if self.faulted:  # an environment reset by a crash starts again only for an invoke
                self._note("invoke [] (the environment serves once more before SHUTDOWN)")
                self._invoke({"items": []})
            try:
                self.box.stop()  # SHUTDOWN: what is left is delivered or dead-lettered
            finally:
                reports = list(self.box.reports)
                lines = list(self.box.logs)
                self.box = None
                if self.disk is not None:
                    subprocess.run(["umount", "-l", str(self.disk)], capture_output=True, timeout=10)
                    shutil.rmtree(self.disk, ignore_errors=True)
            verdicts = judge(self, reports)
            unstarted = [line.text for line in lines if "Extension.SocketError" in line.text
                         or "Extension.InitError" in line.text and line.source != "sandbox"]
            if unstarted and not self.faulted:  # a harness that cannot start the extension judges nothing
                verdicts.append(f"NOT STARTED: the extension could not start without a fault: {unstarted[0][:300]}")
            self.record.update(items=len(self.items), verdicts=verdicts,
                               faults=sum(1 for s in self.steps if not s.startswith("invoke ")))
            saved = self.run_dir / "environment.log"  # what each process said, to read a verdict by
            if verdicts or os.environ.get("CHAOS_KEEP_LOGS"):
                saved.write_text("".join(f"{line.time:.3f} [{line.source}] {line.text}\n" for line in lines))
            if verdicts:
                raise Verdict("the invariant does not hold:\n  " + "\n  ".join(verdicts)
                              + "\nsteps:\n  " + "\n  ".join(self.steps) + f"\nthe environment's log: {saved}")

    return Chaos


def _small_disk() -> Optional[Path]:
    """A folder with a 128 MiB tmpfs of its own, for the journal and the rule that fills it; root
    with CAP_SYS_ADMIN can mount one, as on this project's machines; elsewhere None (no disk
    rule). Lambda's smallest /tmp is 512 MB; 128 MiB still holds, at their bounds for the
    harness's 128 MB function, the extension's journal and the dead letters the function
    writes down for it (a quarter of its memory), so a full disk is the rule's doing only."""
    if os.geteuid() != 0:
        return None
    path = Path(tempfile.mkdtemp(prefix="chaos-journal-"))
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0777", "tmpfs", str(path)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        return None
    return path


# -- the checker ----------------------------------------------------------------------------
def _drain(sqs: Any, url: str) -> List[Dict[str, Any]]:
    got = []
    while True:
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    AttributeNames=["All"])
        messages = reply.get("Messages", [])
        if not messages:
            return got
        got.extend(messages)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])


def judge(machine: Any, reports: List[Any], settle_s: float = 15.0) -> List[str]:
    """Every verdict against the invariant, from moto's queues and the REPORT lines."""
    res = machine.res
    sqs = boto3.client("sqs", endpoint_url=res.endpoint_url)
    seen: Dict[str, List[str]] = {}  # k -> the queues it arrived on
    fifo_order: Dict[str, List[str]] = {}
    letters = ""
    known = {i.k: i for i in machine.items}
    required = [i for i in machine.items if i.id is not None and i.kind not in REFUSED_KINDS
                and (not i.crashed or machine.ctx.strict_crashes)]
    required += [i for i in machine.items if i.soft and not machine.faulted]

    def accounted(item: Item) -> bool:
        return item.k in seen or (item.id is not None and item.id in letters)

    deadline = time.monotonic() + settle_s
    while True:
        for name, url in (("sqs", res.queue_url), ("sns", res.topic_queue_url), ("fifo", res.fifo_queue_url)):
            for message in _drain(sqs, url):
                try:
                    k = json.loads(message["Body"]).get("k")
                except (ValueError, AttributeError):
                    k = None
                seen.setdefault(str(k), []).append(name)
                if name == "fifo":
                    group = message.get("Attributes", {}).get("MessageGroupId", "?")
                    fifo_order.setdefault(group, []).append(str(k))
        letters += "".join(m["Body"] for m in _drain(sqs, res.dlq_url))
        if all(accounted(i) for i in required) or time.monotonic() > deadline:
            break
        time.sleep(0.25)

    verdicts = []
    for item in required:
        if not accounted(item):
            how = "its defer.after callable's item" if item.soft else f"id {item.id}"
            verdicts.append(f"LOST: item {item.k} ({item.kind}{' ' + item.group if item.group else ''}, "
                            f"{how}, step {item.step}) was neither delivered nor dead-lettered")
    for item in machine.items:
        if item.kind in REFUSED_KINDS and item.id is not None:
            why = "over the size limit" if item.kind == "refused" else "with U+FFFF in its body"
            verdicts.append(f"NOT REFUSED: item {item.k} {why} got id {item.id} at the call")
        if item.kind not in REFUSED_KINDS and item.refused is not None:
            verdicts.append(f"REFUSED: item {item.k} ({item.kind}) raised at the call: {item.refused}")
    for k, where in seen.items():
        if k not in known:
            verdicts.append(f"FORGED: a message {k!r} arrived on {where} that was never deferred")
    for group, order in fifo_order.items():
        firsts: List[str] = []
        for k in order:
            if k not in firsts:
                firsts.append(k)
        deferred = [i.k for i in machine.items if i.kind == "fifo" and i.group == group and i.k in firsts]
        if firsts != deferred:
            verdicts.append(f"REORDERED: FIFO group {group} arrived as {firsts}, deferred as {deferred}")
    for report in reports:
        if report.status == "timeout" and report.request_id not in machine.expected_timeouts:
            verdicts.append(f"PAST ITS DEADLINE: invoke {report.request_id} timed out "
                            f"({report.duration_ms:.0f} ms) though its handler returned at once")
    return verdicts
