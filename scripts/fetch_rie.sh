#!/usr/bin/env bash
# Extract AWS's Runtime Interface Emulator from the aws-sam-cli wheel on PyPI
# (samcli/local/rapid/aws-lambda-rie-<arch>); SAM itself is not installed.
set -euo pipefail
dest=${1:-.cache/rie}
py=${PY:-python3}
version=${SAM_CLI_VERSION:-1.170.0}
arch=$(uname -m); case "$arch" in aarch64|arm64) arch=arm64 ;; *) arch=x86_64 ;; esac
mkdir -p "$dest"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "aws-sam-cli==$version"
"$py" - "$tmp" "$dest" "$arch" <<'PY'
import pathlib, sys, zipfile
tmp, dest, arch = sys.argv[1:]
wheel = next(pathlib.Path(tmp).glob("aws_sam_cli-*.whl"))
member = f"samcli/local/rapid/aws-lambda-rie-{arch}"
target = pathlib.Path(dest) / "aws-lambda-rie-x86_64" if arch == "x86_64" else pathlib.Path(dest) / f"aws-lambda-rie-{arch}"
with zipfile.ZipFile(wheel) as zf:
    target.write_bytes(zf.read(member))
target.chmod(0o755)
print(f"RIE extracted to {target}")
PY
