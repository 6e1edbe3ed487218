#!/usr/bin/env bash
# `make package`: `serverless package` of serverless.yml with no AWS account.
#
# Packaging a layer makes Serverless v3 call CloudFormation DescribeStacks (to reuse an
# already uploaded layer version); everything else is local. scripts/with-local-aws.sh sends
# that call to a moto server on a free loopback port, through the serverless-localstack
# plugin (active for stage `local`, and for the stage named in DEFER_SLS_LOCAL_STAGE, which
# this script sets), with dummy credentials. Telemetry and update notifications are off, so
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

# The offline recipe users copy (scripts/with-local-aws.sh): moto server, dummy credentials,
# the framework's telemetry and notifications off; serverless-localstack sends the call there.
export DEFER_SLS_LOCAL_STAGE="$stage" MOTO_PYTHON="$py" MOTO_LOG="$log_dir/moto.log"
out=${SLS_PACKAGE_DIR:-.serverless}
rm -rf "$out"
scripts/with-local-aws.sh node_modules/.bin/serverless package --stage "$stage" --package "$out"
echo "package: $out/ for stage $stage:"
ls -l "$out"
