#!/bin/bash
# Launcher of the defer-runner Lambda extension. Lambda runs every file in
# /opt/extensions; this file's name is the extension's name. It finds the layer root from
# its own path (never a hard-coded /opt) so the same layer runs under the local sandbox.
set -eu

# Shell builtins only: each readlink/dirname/basename would be a process of its own, paid in
# every cold start's init (bench --only startup).
self="$0"
if [ -L "$self" ]; then
    self="$(readlink -f "$self")"
fi
case "$self" in
    */*) here="${self%/*}" ;;
    *) here=. ;;
esac
cwd="$PWD"
cd -P "$here/.."
root="$PWD"
cd "$cwd"

# The runtime's interpreter when there is one (managed Python runtimes), else python3.
if [ -n "${DEFER_RUNNER_PYTHON:-}" ]; then
    py="$DEFER_RUNNER_PYTHON"
elif [ -x /var/lang/bin/python3 ]; then
    py=/var/lang/bin/python3
elif py="$(command -v python3)"; then
    :
else
    echo "defer-runner: no python3 found (set DEFER_RUNNER_PYTHON)" >&2
    exit 127
fi

# The extension registers under its file name (Lambda-Extension-Name must match it).
export DEFER_EXTENSION_NAME="${0##*/}"
export DEFER_LAYER_ROOT="$root"

# Two malloc arenas, not one per thread: the extension's send threads would otherwise each
# keep an arena of their own (measured: 50.8 -> 49.8 MB peak after 1,000 items).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

# -I: ignore PYTHON* variables and the user site, so the function's PYTHONPATH cannot
# shadow the extension's own dependencies (bootstrap.py appends it afterwards).
# -u: unbuffered output, so log lines reach CloudWatch before a freeze.
# -B: no bytecode writes (/opt is read-only on Lambda; locally they would dirty the layer).
# -S: no site processing at start (its .pth files run code before the extension can
# register); bootstrap.py puts the interpreter's site-packages on sys.path itself, and the
# extension runs their .pth files before it imports the first task module.
exec "$py" -I -S -u -B "$root/defer-runner/bootstrap.py" "$@"
