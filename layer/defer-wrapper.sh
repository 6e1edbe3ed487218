#!/bin/bash
# AWS_LAMBDA_EXEC_WRAPPER=/opt/defer-runner/exec-wrapper: start the runtime with its Runtime API calls
# going through the defer-runner extension's proxy, which then sees the exact moment each
# response is posted, whatever decorators the handler has. The wrapper changes nothing else
# and chains: everything after it is the runtime's own command, run as is.
#
# The extension writes the proxy's address beside its socket before it registers, and the
# runtime starts only after every extension has registered. A missing or dead proxy leaves
# the runtime on the real Runtime API: the extension then falls back to its other signals.
api_file="${DEFER_SOCKET:-/tmp/defer-runner.sock}.runtime-api"
if [ -r "$api_file" ]; then
    proxy="$(cat "$api_file")"
    if [ -n "$proxy" ] && (exec 3<>"/dev/tcp/${proxy%:*}/${proxy##*:}") 2>/dev/null; then
        export DEFER_UPSTREAM_RUNTIME_API="$AWS_LAMBDA_RUNTIME_API"
        export AWS_LAMBDA_RUNTIME_API="$proxy"
    fi
fi
exec "$@"
