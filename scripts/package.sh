#!/usr/bin/env bash
# `make package`: `serverless package` of serverless.yml with no AWS account.
#
# Packaging a layer makes Serverless v3 call CloudFormation DescribeStacks (to reuse an
# already uploaded layer version); everything else is local. That call goes to a moto
# server started here on a free loopback port, through the serverless-localstack plugin
# (active for stage `local`, and for the stage named in DEFER_SLS_LOCAL_STAGE, which this
# script sets), with dummy credentials. Telemetry and update notifications are off, so
# nothing but 127.0.0.1 is contacted.
#
# Usage: scripts/package.sh [STAGE]   (default: local; dev and prod work the same way)
#   SLS_PACKAGE_DIR  output folder (default .serverless)
#   FUNCTION_SRC     the function folder (default examples/api_gateway)
# Expects dist/layer (make layer) and node_modules (npm ci) to exist.
set -euo pipefail
cd "$(dirname "$0")/.."

stage=${1:-${STAGE:-local}}
py=${PY:-.venv/bin/python}
log_dir=.cache/package
mkdir -p "$log_dir"

test -d dist/layer/extensions || { echo "package: dist/layer missing, run make layer" >&2; exit 1; }
test -x node_modules/.bin/serverless || { echo "package: run npm ci first" >&2; exit 1; }

# The example function's zip: its folder at the zip root plus its pinned dependencies.
"$py" scripts/build_layer.py --function-src "${FUNCTION_SRC:-examples/api_gateway}" \
    --function-requirements layer/requirements-example.txt --function-zip dist/example-api.zip \
    --function-python "${FUNCTION_PYTHON:-3.12}"
"$py" scripts/build_layer.py --function-src examples/fastapi \
    --function-requirements examples/fastapi/requirements.txt --function-zip dist/example-fastapi.zip \
    --function-python "${FUNCTION_PYTHON:-3.12}"

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$py" -m moto.server -H 127.0.0.1 -p "$port" >"$log_dir/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT

# Bounded wait for moto to listen (at most 20 s).
"$py" - "$port" "$moto_pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        break
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"package: moto server exited, see .cache/package/moto.log")
        if time.monotonic() > deadline:
            sys.exit(f"package: moto server not listening on {port} after 20 s")
        time.sleep(0.1)
PY

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export DEFER_SLS_LOCAL_STAGE="$stage"
unset AWS_PROFILE AWS_DEFAULT_PROFILE
export SLS_TELEMETRY_DISABLED=1 SLS_TRACKING_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
export SLS_DEPRECATION_DISABLE='*' SLS_INTERACTIVE_SETUP_DISABLE=1
export npm_config_update_notifier=false

out=${SLS_PACKAGE_DIR:-.serverless}
rm -rf "$out"
node_modules/.bin/serverless package --stage "$stage" --package "$out"
echo "package: $out/ for stage $stage:"
ls -l "$out"
