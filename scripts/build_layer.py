#!/usr/bin/env python3
"""Build the defer-runner Lambda layer: ``dist/layer/`` (exactly what lands in /opt) and
``dist/layer.zip``.

Layout::

    extensions/defer-runner   bash launcher (layer/defer-runner.sh), LF endings, mode 0755
    defer-runner/exec-wrapper AWS_LAMBDA_EXEC_WRAPPER script (layer/defer-wrapper.sh), mode 0755
    python/handler_lib/       the function-side library (repo handler_lib/)
    python/msgpack/           handler_lib's only dependency
    defer-runner/bootstrap.py sets sys.path, runs ``python -m _defer_runner``
    defer-runner/_defer_runner/ the extension (repo extension/, renamed: see layer/bootstrap.py)
    defer-runner/handler_lib/ the extension's own copy of the library and its delivery engine
    defer-runner/deps/        the extension's own dependencies (layer/requirements-extension.txt)

Dependencies are never built from the host: wheels for the Lambda platform (manylinux2014,
x86_64 and aarch64, CPython 3.10 to 3.13) are downloaded once into .cache/layer/wheels and
installed per (python, arch) into separate folders that are merged. Compiled modules carry
per-version/per-arch file names, so one layer serves both architectures and all four
Pythons; every other file must be identical across the eight installs, or the build fails.
The merged dependencies are cached under a key of the pins, so a rebuild only copies.
The folder names come from layer/bootstrap.py, the one place that defines the layout.

Bytecode ships for the Lambda Pythons the build host can run (``python3.X`` on PATH):
unchecked-hash ``__pycache__/*.cpython-3X.pyc`` next to every module; other versions compile
from source, as before.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LAYER_SRC = REPO / "layer"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
ARCHES = ("x86_64", "aarch64")

def _layout() -> Any:
    """layer/bootstrap.py, which defines the layer's folders (it runs in the layer itself)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("defer_layer_bootstrap", LAYER_SRC / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYOUT = _layout()
EXTENSION_NAME = LAYOUT.EXTENSION_DIR
# Bump when the way dependencies are installed changes, to invalidate the cache.
BUILD_FORMAT = "3"
# Fixed zip timestamps (the zip epoch) make layer.zip reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# The botocore data kept by --trim-botocore: the services the extension calls plus the
# files botocore reads at client creation for any service.
BOTOCORE_SERVICES_KEPT = frozenset({"sqs", "sns", "events", "sts", "s3", "lambda", "stepfunctions"})


def log(msg: str) -> None:
    print(f"[build_layer] {msg}", file=sys.stderr, flush=True)


def platform_args(arch: str) -> list[str]:
    """pip --platform flags for a Lambda architecture (Amazon Linux 2, glibc 2.26)."""
    # pip expands manylinux2014_x86_64 to manylinux2010/manylinux1 itself.
    return ["--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_17_{arch}"]


def target_args(python: str, arch: str) -> list[str]:
    return [
        "--only-binary=:all:",
        *platform_args(arch),
        "--implementation",
        "cp",
        "--python-version",
        python,
    ]


# pip warns once per package about unreachable find-links/extra-index entries of the
# host's pip configuration; that is noise here (we pass our own sources).
_PIP_NOISE = re.compile(r"^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$")


def pip(*args: str) -> None:
    """Run pip quietly; show its output only when it fails or says something new."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and not _PIP_NOISE.match(ln)]
    if proc.returncode != 0:
        sys.stderr.write("\n".join(lines) + "\n")
        raise SystemExit(f"pip failed ({proc.returncode}): {' '.join(cmd)}")
    for ln in lines:
        log(f"pip: {ln}")


def cache_key(req_files: Iterable[Path], trim: bool, compiled_for: Iterable[str] = ()) -> str:
    """A key of everything that decides the installed dependencies."""
    h = hashlib.sha256()
    h.update(f"{BUILD_FORMAT}|{PYTHONS}|{ARCHES}|trim={trim}|pyc={sorted(compiled_for)}|".encode())
    for arch in ARCHES:
        h.update(" ".join(platform_args(arch)).encode())
    for f in req_files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


Target = tuple[str, str]  # (python version, architecture)
LAYER_TARGETS: tuple[Target, ...] = tuple((p, a) for p in PYTHONS for a in ARCHES)


def download(req: Path, wheels: Path, targets: Iterable[Target] = LAYER_TARGETS) -> None:
    """Fetch exactly the pinned wheels (no dependency resolution) for every target.

    A stamp per (pins, target) skips pip (and the index) once a target is downloaded.
    """
    digest = hashlib.sha256(req.read_bytes()).hexdigest()[:16]
    for python, arch in targets:
        stamp = wheels / f".downloaded-{req.stem}-{digest}-{python}-{arch}"
        if stamp.exists():
            continue
        pip("download", "-q", "--no-deps", *target_args(python, arch),
            "-d", str(wheels), "-r", str(req))
        stamp.touch()


def install_merged(req: Path, wheels: Path, dest: Path, work: Path,
                   targets: Iterable[Target] = LAYER_TARGETS) -> None:
    """Install ``req`` for each (python, arch) from the local wheels and merge into dest.

    --no-index with dependency resolution on: a dependency missing from the pins fails
    here instead of being fetched unpinned.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for python, arch in targets:
        one = work / f"{req.stem}-{python}-{arch}"
        # --no-warn-conflicts: after a --target install pip checks the *running* interpreter's
        # packages (this build's virtualenv) against the new ones and prints "ERROR: pip's
        # dependency resolver ..." about them, though the target is complete and the build
        # succeeds; the target's own resolution is still checked (a missing pin fails).
        pip("install", "-q", "--no-index", "--find-links", str(wheels), "--no-compile", "--no-warn-conflicts",
            *target_args(python, arch), "--target", str(one), "-r", str(req))
        merge_tree(one, dest)
        shutil.rmtree(one)
    # Console scripts (bin/jp.py, ...) have host shebangs and are never used.
    shutil.rmtree(dest / "bin", ignore_errors=True)


def merge_tree(src: Path, dest: Path) -> None:
    """Copy src into dest; a file present in both must be identical (except dist-info)."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        out = dest / rel
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        if out.exists() and not filecmp.cmp(path, out, shallow=False):
            # WHEEL/RECORD name the wheel's own tags; they legitimately differ.
            if not any(part.endswith(".dist-info") for part in rel.parts):
                raise SystemExit(f"conflicting file across targets: {rel}")
        shutil.copy2(path, out)


def strip_tree(root: Path) -> None:
    """Remove bytecode caches written by pip or the host (compile_tree writes the shipped ones)."""
    for d in sorted(root.rglob("__pycache__"), reverse=True):
        shutil.rmtree(d, ignore_errors=True)
    for f in root.rglob("*.py[co]"):
        f.unlink()


def bytecode_interpreters() -> dict[str, str]:
    """{version: executable} of the Lambda Pythons this build can run, to compile for."""
    found = {}
    for version in PYTHONS:
        if sys.version_info[:2] == tuple(int(n) for n in version.split(".")):
            found[version] = sys.executable
        elif exe := shutil.which(f"python{version}"):
            found[version] = exe
    return found


def compile_tree(root: Path, interpreters: dict[str, str]) -> None:
    """Ship bytecode: /opt is read-only on Lambda, so without it every cold start compiles
    every module it imports (boto3 and botocore: hundreds of ms). Unchecked-hash .pyc files,
    because the zip's fixed timestamps defeat timestamp checks and a layer never changes in
    place. A file that one interpreter cannot compile simply stays source-only for it."""
    failed: dict[str, dict[str, str]] = {}  # file -> {version: why}
    for version, exe in sorted(interpreters.items()):
        proc = subprocess.run([exe, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                               "unchecked-hash", str(root)], capture_output=True, text=True)
        if proc.returncode != 0:
            for path, why in compile_errors(proc.stdout + proc.stderr):
                failed.setdefault(path, {})[version] = why
    if failed:  # once per tree, each file with the Pythons it does not compile for and why
        files = "; ".join(f"{Path(path).relative_to(root) if Path(path).is_relative_to(root) else path} "
                          f"(python{', '.join(sorted(whys))}: {next(iter(whys.values()))})"
                          for path, whys in sorted(failed.items()))
        log(f"{len(failed)} file(s) under {root.name}/ stay source-only, as they do not compile: {files}")


def compile_errors(output: str) -> list[tuple[str, str]]:
    """(file, first error line) of each file ``compileall -q`` reports it could not compile."""
    found: list[tuple[str, str]] = []
    lines = output.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("*** Error compiling '"):
            path = line[len("*** Error compiling '"):].rsplit("'", 1)[0]
            why = next((later.strip() for later in lines[n + 1:n + 8]
                        if later and not later.startswith(" ") and ":" in later), "no reason given")
            found.append((path, why))
    return found


def is_shipped_bytecode(pyc: Path) -> bool:
    """A .pyc this build wrote: unchecked-hash (flags == 1), next to its source."""
    try:
        with open(pyc, "rb") as fh:
            flags = int.from_bytes(fh.read(8)[4:8], "little")
    except OSError:
        return False
    source = pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")
    return flags == 1 and pyc.parent.name == "__pycache__" and source.is_file()


def strip_stray_bytecode(root: Path) -> int:
    """Remove bytecode a local run left in the layer (timestamp .pyc); keep what was shipped."""
    removed = 0
    for pyc in list(root.rglob("*.py[co]")):
        if not is_shipped_bytecode(pyc):
            pyc.unlink()
            removed += 1
    for d in sorted(root.rglob("__pycache__"), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    return removed


def trim_botocore(deps: Path) -> int:
    """Drop botocore service models other than BOTOCORE_SERVICES_KEPT; return bytes saved.

    botocore loads data/<service>/ lazily, so clients for the kept services still work.
    Not the default: deferred tasks run inside the extension process with these deps
    first on sys.path, so a task calling any other AWS service would fail.
    """
    data = deps / "botocore" / "data"
    saved = 0
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES_KEPT:
            saved += tree_size(entry)
            shutil.rmtree(entry)
    return saved


def tree_size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def prepare_deps(cache: Path, trim: bool) -> Path:
    """Return a cached folder holding ``deps/`` and ``python/``, building it if needed."""
    reqs = [LAYER_SRC / "requirements-extension.txt", LAYER_SRC / "requirements-python.txt"]
    interpreters = bytecode_interpreters()
    key = cache_key(reqs, trim, interpreters)
    ready = cache / f"deps-{key}"
    if (ready / ".complete").exists():
        log(f"dependencies: cached ({ready.relative_to(REPO) if ready.is_relative_to(REPO) else ready})")
        return ready
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    for req in reqs:
        download(req, wheels)
    work = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache))
    try:
        install_merged(reqs[0], wheels, work / "deps", work / "tmp")
        install_merged(reqs[1], wheels, work / "python", work / "tmp")
        shutil.rmtree(work / "tmp", ignore_errors=True)
        for sub in ("deps", "python"):
            strip_tree(work / sub)
        if trim:
            saved = trim_botocore(work / "deps")
            log(f"trimmed botocore data: {saved} bytes removed")
        for sub in ("deps", "python"):
            compile_tree(work / sub, interpreters)
        (work / ".complete").write_text(key + "\n")
        shutil.rmtree(ready, ignore_errors=True)
        work.rename(ready)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Keep the two newest installs (e.g. trimmed and not); older pins are stale.
    done = sorted((d for d in cache.glob("deps-*") if (d / ".complete").exists()),
                  key=lambda d: (d / ".complete").stat().st_mtime, reverse=True)
    for old in done[2:]:
        shutil.rmtree(old, ignore_errors=True)
    log(f"dependencies: installed in {time.monotonic() - t0:.1f}s")
    return ready


def copy_package(src: Path, dest: Path) -> None:
    """Copy a source package without bytecode or editor litter."""
    if not (src / "__init__.py").exists():
        raise SystemExit(f"{src} is not a package (no __init__.py)")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]", ".*"))


def write_launcher(dest: Path, source: str = "defer-runner.sh") -> None:
    """Install a script; a CR in it would make Lambda fail with Extension.LaunchError."""
    text = (LAYER_SRC / source).read_bytes()
    if b"\r" in text:
        raise SystemExit(f"layer/{source} has CR line endings; Lambda needs LF")
    if not text.startswith(b"#!"):
        raise SystemExit(f"layer/{source} has no shebang")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(text)
    dest.chmod(0o755)


def normalize_modes(root: Path, executables: set[Path]) -> None:
    """Readable by all (Lambda runs extensions as a non-root user), exec only where needed."""
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file():
            path.chmod(0o755 if path in executables else 0o644)


def native_modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.so") if p.is_file())


def check_msgpack(root: Path) -> None:
    """Every (python, arch) target must have its compiled msgpack in both places."""
    for base in (root / LAYOUT.FUNCTION_DIR / "msgpack", root / EXTENSION_NAME / LAYOUT.DEPS_DIR / "msgpack"):
        names = {p.name for p in base.glob("_cmsgpack.*.so")}
        for python in PYTHONS:
            for arch in ARCHES:
                want = f"_cmsgpack.cpython-{python.replace('.', '')}-{arch}-linux-gnu.so"
                if want not in names:
                    raise SystemExit(f"missing {base.relative_to(root)}/{want}")


def iter_files(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*") if p.is_file())


def write_zip(root: Path, out: Path) -> None:
    """A reproducible zip that keeps Unix modes (the launcher must stay executable)."""
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in iter_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), ZIP_DATE)
            info.create_system = 3  # Unix: external_attr carries the mode
            info.external_attr = (0o100000 | (path.stat().st_mode & 0o7777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)


def replace_dir(new: Path, out: Path) -> None:
    """Swap the fresh build in with two renames, so readers rarely see a partial tree."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def sources_digest(deps: Path) -> str:
    """A digest of every input of the layer, to skip a rebuild when nothing changed.

    Skipping matters beyond speed: tests elsewhere may be running the current dist/layer
    (bind-mounted on /opt), and a rebuild replaces it.
    """
    h = hashlib.sha256((deps / ".complete").read_bytes())
    inputs = [Path(__file__).resolve(), LAYER_SRC / "bootstrap.py", LAYER_SRC / "defer-runner.sh",
              LAYER_SRC / "defer-wrapper.sh"]
    for pkg in (REPO / "handler_lib", REPO / "extension"):
        inputs += [p for p in iter_files(pkg)
                   if "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")]
    for path in sorted(inputs):
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def report(out: Path, zip_out: Path) -> None:
    for so in native_modules(out):
        log(f"native: {so.relative_to(out)}")
    botocore_data = out / EXTENSION_NAME / LAYOUT.DEPS_DIR / "botocore" / "data"
    log(f"botocore data: {tree_size(botocore_data)} bytes"
        f" ({sum(1 for p in botocore_data.iterdir() if p.is_dir())} services)")
    log(f"layer: {out} {tree_size(out)} bytes unzipped, {sum(1 for _ in iter_files(out))} files")
    log(f"layer: {zip_out} {zip_out.stat().st_size} bytes zipped")


def build(out: Path, zip_out: Path, cache: Path, trim: bool, force: bool = False) -> None:
    t0 = time.monotonic()
    deps = prepare_deps(cache, trim)
    digest = sources_digest(deps)
    stamp = out.with_name(f".{out.name}.stamp")  # outside the layer: the layer is exactly /opt
    if (not force and out.is_dir() and zip_out.is_file() and stamp.is_file()
            and stamp.read_text().split() == [digest, str(zip_out)]):
        if strip_stray_bytecode(out):
            # Written by a local run of the layer (the function side imports from python/).
            log("layer: removed bytecode written by local runs")
        log(f"layer: up to date ({out})")
        report(out, zip_out)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        shutil.copytree(deps / "python", stage / LAYOUT.FUNCTION_DIR)
        shutil.copytree(deps / "deps", stage / EXTENSION_NAME / LAYOUT.DEPS_DIR)
        packages = [stage / LAYOUT.FUNCTION_DIR / "handler_lib"]
        copy_package(REPO / "handler_lib", packages[0])
        for name, source in LAYOUT.EXTENSION_PACKAGES:  # the extension imports only from its own folder
            packages.append(stage / EXTENSION_NAME / name)
            copy_package(REPO / source, packages[-1])
        for pkg in packages:
            compile_tree(pkg, bytecode_interpreters())
        shutil.copy2(LAYER_SRC / "bootstrap.py", stage / EXTENSION_NAME / "bootstrap.py")
        launcher = stage / LAYOUT.LAUNCHER
        write_launcher(launcher)
        wrapper = stage / EXTENSION_NAME / LAYOUT.EXEC_WRAPPER
        write_launcher(wrapper, "defer-wrapper.sh")
        normalize_modes(stage, {launcher, wrapper})
        stage.chmod(0o755)
        check_msgpack(stage)
        replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    write_zip(out, zip_out)
    stamp.write_text(f"{digest} {zip_out}\n")
    report(out, zip_out)
    log(f"done in {time.monotonic() - t0:.1f}s")


def build_function(src: Path, req: Path | None, zip_out: Path, cache: Path,
                   python: str, dir_out: Path | None = None) -> None:
    """Zip a function folder with its files at the root plus its dependencies.

    Serverless v3 cannot re-root ``package.patterns``; this makes ``app.handler`` resolve.
    Dependencies are installed for ``python`` on both architectures and merged, like the
    layer's, so one zip serves x86_64 and arm64. With ``dir_out`` the same files go to that
    folder instead of a zip: a task root for lambda_sandbox, which, as Lambda, lets the
    function import only its own folder, its layers and the runtime's packages.
    """
    t0 = time.monotonic()
    targets = [(python, arch) for arch in ARCHES]
    if dir_out is not None:  # staged beside it: replace_dir renames
        dir_out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".fn-", dir=dir_out.parent if dir_out is not None else cache))
    try:
        if req is not None:
            h = hashlib.sha256(f"{BUILD_FORMAT}|{targets}|".encode() + req.read_bytes())
            ready = cache / f"fn-deps-{h.hexdigest()[:16]}"
            if not (ready / ".complete").exists():
                wheels = cache / "wheels"
                wheels.mkdir(parents=True, exist_ok=True)
                download(req, wheels, targets)
                work = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache))
                try:
                    install_merged(req, wheels, work / "deps", work / "tmp", targets)
                    shutil.rmtree(work / "tmp", ignore_errors=True)
                    strip_tree(work / "deps")
                    (work / ".complete").touch()
                    shutil.rmtree(ready, ignore_errors=True)
                    work.rename(ready)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(ready / "deps", stage, dirs_exist_ok=True)
        shutil.copytree(src, stage, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.py[co]", ".*",
                                                      "node_modules", ".venv"))
        if not any(stage.glob("*.py")):
            raise SystemExit(f"{src} has no Python module at its top level")
        normalize_modes(stage, set())
        if dir_out is not None:
            replace_dir(stage, dir_out)
            log(f"function: {dir_out} ({time.monotonic() - t0:.1f}s)")
            return
        zip_out.parent.mkdir(parents=True, exist_ok=True)
        write_zip(stage, zip_out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"function: {zip_out} {zip_out.stat().st_size} bytes zipped"
        f" ({time.monotonic() - t0:.1f}s)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "dist" / "layer",
                    help="layer folder (default dist/layer)")
    ap.add_argument("--zip", type=Path, default=None,
                    help="zip to write (default: <out>.zip, i.e. dist/layer.zip)")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "layer",
                    help="wheel and installed-dependency cache (default .cache/layer)")
    ap.add_argument("--trim-botocore", action="store_true",
                    default=os.environ.get("DEFER_TRIM_BOTOCORE") == "1",
                    help="keep only the botocore models of the services the extension calls; breaks deferred"
                         " tasks that call other AWS services (env DEFER_TRIM_BOTOCORE=1)")
    ap.add_argument("--function-src", type=Path, default=None,
                    help="instead of the layer, zip this function folder (files at the root)")
    ap.add_argument("--function-requirements", type=Path, default=None,
                    help="pinned pure-Python requirements bundled with --function-src")
    ap.add_argument("--function-zip", type=Path, default=REPO / "dist" / "example-api.zip",
                    help="zip written for --function-src (default dist/example-api.zip)")
    ap.add_argument("--function-dir", type=Path, default=None,
                    help="write the function's files to this folder instead of a zip: a task root"
                         " for lambda_sandbox")
    ap.add_argument("--function-python", default=None,
                    help="Python version of the function's runtime (default 3.12; with --function-dir,"
                         " this interpreter's, the one lambda_sandbox runs the function with)")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args(argv)
    if args.function_src is not None:
        cache = args.cache.resolve()
        cache.mkdir(parents=True, exist_ok=True)
        python = args.function_python or ("3.12" if args.function_dir is None
                                          else f"{sys.version_info.major}.{sys.version_info.minor}")
        build_function(args.function_src, args.function_requirements, args.function_zip, cache, python,
                       args.function_dir)
        return
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    zip_out = args.zip or out.with_name(out.name + ".zip")
    build(out, zip_out, args.cache.resolve(), args.trim_botocore, args.force)


if __name__ == "__main__":
    main()
