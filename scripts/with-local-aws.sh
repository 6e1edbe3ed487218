#!/usr/bin/env bash
# Run a command with AWS pointed at a throwaway moto server: for packaging without an AWS
# account (CI, offline). Copy it into your project; lambda-defer's `make package` uses it too.
#
#   with-local-aws.sh npx serverless package --stage offline
#
# `serverless package` of a service with a layer calls CloudFormation DescribeStacks (to reuse
# an uploaded layer version), so without credentials it stops at "AWS provider credentials not
# found", and with dummy ones at "Inaccessible host: cloudformation...". This starts moto
# server (pip install 'moto[server]') on a free loopback port, exports dummy credentials and
# AWS_ENDPOINT_URL (which the serverless-localstack plugin, active for the stages listed in
# custom.localstack.stages, sends the call to), turns off the framework's telemetry and
# notifications, runs the command and stops the server. With real credentials none of this
# is needed. MOTO_PYTHON: the Python that has moto (default python3); MOTO_LOG: its log file.
set -euo pipefail
py=${MOTO_PYTHON:-python3}
log=${MOTO_LOG:-$(mktemp -t moto-XXXXXX.log)}

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$py" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT

# Bounded wait for moto to listen (at most 20 s).
"$py" - "$port" "$moto_pid" "$log" <<'PY'
import os, socket, sys, time
port, pid, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        break
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"with-local-aws: moto server exited, see {log}")
        if time.monotonic() > deadline:
            sys.exit(f"with-local-aws: moto server not listening on {port} after 20 s")
        time.sleep(0.1)
PY

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
unset AWS_PROFILE AWS_DEFAULT_PROFILE
export SLS_TELEMETRY_DISABLED=1 SLS_TRACKING_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
export SLS_DEPRECATION_DISABLE='*' SLS_INTERACTIVE_SETUP_DISABLE=1
export npm_config_update_notifier=false
"$@"
