"""`python -m lambda_sandbox`: run a function and its layer like Lambda, until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import List, Optional

from .errors import SandboxError
from .sandbox import Sandbox

__all__ = ["main", "parse_args"]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lambda_sandbox", description=__doc__)
    parser.add_argument("--opt", required=True, action="append", metavar="DIR",
                        help="layer directory, mounted as /opt in Lambda (repeatable: layers merged into /opt "
                             "in order, a later layer's file replacing an earlier one's, as Lambda merges them)")
    parser.add_argument("--task", required=True, help="function code directory (LAMBDA_TASK_ROOT)")
    parser.add_argument("--handler", required=True, help="MODULE.FUNCTION (free-form with --runtime provided)")
    parser.add_argument("--timeout", type=float, default=3.0, help="function timeout in seconds (default 3)")
    parser.add_argument("--memory", type=int, default=128, help="memory size in MB (default 128)")
    parser.add_argument("--port", type=int, default=8080, help="invoke endpoint port; 0 picks a free one")
    parser.add_argument("--runtime-api-port", type=int, default=0, help="Runtime API port; 0 picks a free one")
    parser.add_argument("--init", choices=("on-invoke", "eager"), default="on-invoke",
                        help="on-invoke (default): init inside the first invoke, as on-demand Lambda; "
                             "eager: init at start")
    parser.add_argument("--runtime", choices=("python", "provided"), default="python",
                        help="python (default): awslambdaric; provided: the task's or the layer's bootstrap")
    parser.add_argument("--isolated-env", action="store_true",
                        help="pass only --env and the AWS credentials, region and endpoint variables "
                             "(default: the sandbox's environment passes through, host-only variables excepted)")
    parser.add_argument("--share", action="append", default=[], metavar="DIR",
                        help="a host directory under /tmp the environment keeps seeing at its own path (repeatable)")
    parser.add_argument("--no-mount-namespace", action="store_true",
                        help="never use a private mount namespace (what a user without root gets)")
    parser.add_argument("--as-root", action="store_true",
                        help="as root, run the function and extensions as root (default: as Lambda's unprivileged "
                             "user sbx_user1051, uid 993, where the sandbox can)")
    parser.add_argument("--mode", choices=("on-demand", "managed-instances"), default="on-demand",
                        help="on-demand (default): one invoke at a time, frozen between invokes; managed-instances: "
                             "Lambda Managed Instances (concurrent invokes, no freeze, extensions get SHUTDOWN only)")
    parser.add_argument("--max-concurrency", type=int, default=None, metavar="N",
                        help="managed-instances: invokes served at once (AWS_LAMBDA_MAX_CONCURRENCY; default 4)")
    parser.add_argument("--allow-host-packages", action="store_true",
                        help="let the function import the sandbox's own installed packages (its virtualenv); "
                             "default: only the task root, the layers' python/ and the runtime's (awslambdaric, "
                             "boto3), as on Lambda")
    parser.add_argument("--cpu", choices=("auto", "off"), default="auto",
                        help="auto (default): CPU in proportion to --memory, as Lambda (1769 MB = one vCPU), "
                             "through a cgroup where the host allows it (root, a cpu controller, a mount "
                             "namespace); off: the host's CPU. REPORT's 'CPU Limit' says which is in force")
    parser.add_argument("--function-name", default="test_function")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a function environment variable (repeatable)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    bad = [item for item in args.env if "=" not in item]
    if bad:
        print(f"lambda_sandbox: --env {bad[0]!r} is not KEY=VALUE", file=sys.stderr)
        return 2
    env = dict(item.split("=", 1) for item in args.env)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox = Sandbox(args.opt, args.task, args.handler, timeout_s=args.timeout, memory_mb=args.memory,
                          env=env, port=args.port, runtime_api_port=args.runtime_api_port,
                          function_name=args.function_name, init=args.init, runtime=args.runtime,
                          isolated_env=args.isolated_env, mode=args.mode, max_concurrency=args.max_concurrency,
                          share=args.share, namespace=False if args.no_mount_namespace else None,
                          unprivileged=False if args.as_root else None,
                          allow_host_packages=args.allow_host_packages, cpu=args.cpu)
        sandbox.start(wait_init=False)
    except SandboxError as exc:
        print(f"lambda_sandbox: {exc}", file=sys.stderr)
        return 2
    print(f"lambda_sandbox listening on 127.0.0.1:{sandbox.port} runtime-api {sandbox.runtime_api}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0
