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

# DEFER_NEXT_EXEC_WRAPPER: a second exec wrapper (ADOT's /opt/otel-instrument) that a function can
# no longer name in AWS_LAMBDA_EXEC_WRAPPER, which holds this one: it runs next, with the
# runtime's command. One that cannot run is said on stderr (the function's log) and left out,
# and the runtime starts through this wrapper alone: the function and its deferred work go on.
next="${DEFER_NEXT_EXEC_WRAPPER:-}"
if [ -n "$next" ]; then
    problem=""
    if [ ! -e "$next" ]; then
        problem="no such file"
    elif [ -d "$next" ] || [ ! -x "$next" ]; then
        problem="not an executable file"
    elif [ "$next" -ef "$0" ]; then
        problem="it is this wrapper (AWS_LAMBDA_EXEC_WRAPPER) itself"
    fi
    if [ -z "$problem" ]; then
        exec "$next" "$@"
    fi
    echo "defer-runner exec-wrapper: ERROR: DEFER_NEXT_EXEC_WRAPPER=$next: $problem; the runtime starts without it, through /opt/defer-runner/exec-wrapper alone" >&2
fi
exec "$@"
