"""The layer built by scripts/build_layer.py: layout, platform wheels, launcher, zip."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ARCHES, PYTHONS, REPO

pytestmark = pytest.mark.timeout(900)

ELF_MACHINE = {"x86_64": 62, "aarch64": 183}
NATIVE = re.compile(r"^(?P<mod>.+)\.cpython-(?P<py>\d+)-(?P<arch>x86_64|aarch64)-linux-gnu\.so$")


def pins(name: str) -> dict[str, str]:
    """{distribution: version} of a layer/requirements-*.txt file."""
    out = {}
    for line in (REPO / "layer" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            dist, version = line.split("==")
            out[re.sub(r"[-_.]+", "_", dist).lower()] = version
    return out


def dist_infos(folder: Path) -> dict[str, str]:
    found = {}
    for d in folder.glob("*.dist-info"):
        dist, version = d.name[: -len(".dist-info")].rsplit("-", 1)
        found[re.sub(r"[-_.]+", "_", dist).lower()] = version
    return found


def test_layout_matches_the_contract(layer_dir: Path) -> None:
    assert (layer_dir / "extensions" / "defer-runner").is_file()
    assert (layer_dir / "python" / "handler_lib" / "__init__.py").is_file()
    assert (layer_dir / "python" / "msgpack" / "__init__.py").is_file()
    assert (layer_dir / "defer-runner" / "bootstrap.py").is_file()
    assert (layer_dir / "defer-runner" / "_defer_runner" / "__init__.py").is_file()
    for pkg in ("boto3", "botocore", "msgpack"):
        assert (layer_dir / "defer-runner" / "deps" / pkg / "__init__.py").is_file(), pkg
    assert sorted(p.name for p in layer_dir.iterdir()) == ["defer-runner", "extensions", "python"]
    assert [p.name for p in (layer_dir / "extensions").iterdir()] == ["defer-runner"]


def test_function_side_has_only_handler_lib_and_msgpack(layer_dir: Path) -> None:
    """Anything else in python/ would shadow the function's own packages."""
    top = {p.name for p in (layer_dir / "python").iterdir() if not p.name.endswith(".dist-info")}
    assert top == {"handler_lib", "msgpack"}


def test_installed_versions_are_the_pins(layer_dir: Path) -> None:
    assert dist_infos(layer_dir / "defer-runner" / "deps") == pins("requirements-extension.txt")
    assert dist_infos(layer_dir / "python") == pins("requirements-python.txt")


def test_sources_are_copied_whole(layer_dir: Path) -> None:
    for pkg, dest in (("handler_lib", "python/handler_lib"),
                      ("extension", "defer-runner/_defer_runner")):
        src = {p.relative_to(REPO / pkg) for p in (REPO / pkg).rglob("*.py")
               if "__pycache__" not in p.parts}
        got = {p.relative_to(layer_dir / dest) for p in (layer_dir / dest).rglob("*.py")}
        assert src == got, pkg


def test_bytecode_is_shipped_unchecked_for_this_python_only(layer_dir: Path) -> None:
    """/opt is read-only: without shipped .pyc every cold start compiles what it imports.
    Unchecked-hash, because the zip's fixed timestamps would fail a timestamp check."""
    tag = sys.implementation.cache_tag
    for pkg in ("python/handler_lib", "defer-runner/_defer_runner", "defer-runner/deps/botocore",
                "python/msgpack"):
        for src in (layer_dir / pkg).rglob("*.py"):
            pyc = src.parent / "__pycache__" / f"{src.stem}.{tag}.pyc"
            assert pyc.is_file(), pyc
            assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 1, pyc  # hash-based, unchecked
    for pyc in layer_dir.rglob("*.pyc"):
        assert pyc.parent.name == "__pycache__", pyc
        assert (pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")).is_file(), pyc
        assert ".opt-" not in pyc.name, pyc


def test_shipped_bytecode_is_what_python_runs(layer_dir: Path, tmp_path: Path) -> None:
    """Python loads the shipped .pyc without reading the source (its mtime cannot be trusted)."""
    shutil.copytree(layer_dir / "python", tmp_path / "python")
    (tmp_path / "python" / "handler_lib" / "_dispatch.py").write_text("raise ImportError('source read')\n")
    code = "import sys; sys.path.insert(0, sys.argv[1]); from handler_lib import defer; print('ok')"
    proc = subprocess.run([sys.executable, "-I", "-B", "-c", code, str(tmp_path / "python")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_no_stray_files_and_everything_readable(layer_dir: Path) -> None:
    assert not (layer_dir / "defer-runner" / "deps" / "bin").exists()
    for p in layer_dir.rglob("*"):
        mode = p.stat().st_mode
        assert mode & stat.S_IROTH, p
        if p.is_dir():
            assert mode & stat.S_IXOTH, p


def test_native_modules_cover_every_python_and_arch(layer_dir: Path) -> None:
    """One layer for x86_64 and arm64, Python 3.10-3.13: every compiled module exists in
    all eight variants, each an ELF for the architecture its name says."""
    variants: dict[Path, set[tuple[str, str]]] = {}
    for so in layer_dir.rglob("*.so"):
        m = NATIVE.match(so.name)
        assert m, f"untagged native module {so.relative_to(layer_dir)}"
        variants.setdefault(so.with_name(m["mod"]), set()).add((m["py"], m["arch"]))
        header = so.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[m["arch"]], so.name
    want = {(p.replace(".", ""), a) for p in PYTHONS for a in ARCHES}
    assert variants, "no native modules at all: msgpack's C extension is missing"
    for mod, have in variants.items():
        assert have == want, f"{mod.relative_to(layer_dir)}: missing {sorted(want - have)}"
    assert layer_dir / "python" / "msgpack" / "_cmsgpack" in variants
    assert layer_dir / "defer-runner" / "deps" / "msgpack" / "_cmsgpack" in variants


def test_launcher_file(layer_dir: Path) -> None:
    launcher = layer_dir / "extensions" / "defer-runner"
    data = launcher.read_bytes()
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o755
    assert b"\r" not in data
    assert data.startswith(b"#!/bin/bash\n")
    code = [ln for ln in data.decode().splitlines() if not ln.lstrip().startswith("#")]
    assert "set -eu" in code
    assert not any("/opt" in ln for ln in code), "launcher must not hard-code /opt"
    assert any(ln.lstrip().startswith("exec ") for ln in code)


def test_zip_mirrors_the_folder_and_keeps_modes(layer_build: tuple[Path, Path, str]) -> None:
    layer_dir, layer_zip, _ = layer_build
    with zipfile.ZipFile(layer_zip) as zf:
        names = sorted(zf.namelist())
        files = sorted(p.relative_to(layer_dir).as_posix() for p in layer_dir.rglob("*") if p.is_file())
        assert names == files
        info = zf.getinfo("extensions/defer-runner")
        assert info.external_attr >> 16 == 0o100755
        assert zf.read("extensions/defer-runner") == (layer_dir / "extensions" / "defer-runner").read_bytes()
        assert zf.getinfo("python/handler_lib/__init__.py").external_attr >> 16 == 0o100644


def test_build_reports_sizes(layer_build: tuple[Path, Path, str]) -> None:
    log = layer_build[2]
    assert re.search(r"layer: \S+ \d+ bytes unzipped", log), log
    assert re.search(r"layer: \S+layer\.zip \d+ bytes zipped", log), log


def test_rebuild_is_skipped_when_nothing_changed(layer_build: tuple[Path, Path, str]) -> None:
    layer_dir, _, _ = layer_build
    before = (layer_dir / "extensions" / "defer-runner").stat().st_ino
    cache = layer_dir / "python" / "handler_lib" / "__pycache__"
    shipped = sorted(cache.iterdir())
    stray = cache / "__init__.cpython-39.pyc"  # as a local run of another Python leaves it
    stray.write_bytes(b"\0" * 16)
    other = layer_dir / "python" / "msgpack" / "__pycache__" / "stray.cpython-311.pyc"  # no source
    other.write_bytes(b"\0" * 16)
    proc = subprocess.run([sys.executable, "scripts/build_layer.py", "--out", str(layer_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "dependencies: cached" in proc.stderr
    assert "up to date" in proc.stderr
    assert (layer_dir / "extensions" / "defer-runner").stat().st_ino == before
    assert not stray.exists() and not other.exists()
    assert sorted(cache.iterdir()) == shipped


# --- the launcher and bootstrap, run for real on this host -------------------------------

PROBE = '''
import importlib.util, json, os, sys
import boto3, msgpack
json.dump({
    "pid": os.getpid(),
    "sys_path": sys.path,
    "isolated": sys.flags.isolated,
    "no_site": sys.flags.no_site,
    "dont_write_bytecode": sys.dont_write_bytecode,
    "msgpack": msgpack.__file__,
    "packer": msgpack.Packer.__module__,
    "boto3": boto3.__file__,
    "handler_lib": importlib.util.find_spec("handler_lib").origin,
    "name": os.environ.get("DEFER_EXTENSION_NAME"),
    "argv": sys.argv,
    "executable": sys.executable,
    "main": __name__,
}, open(os.environ["PROBE_OUT"], "w"))
'''


@pytest.fixture
def probe_layer(layer_dir: Path, tmp_path: Path) -> Path:
    """The built layer with a probe in place of the extension (deps and python/ linked)."""
    root = tmp_path / "opt"
    (root / "defer-runner" / "_defer_runner").mkdir(parents=True)
    (root / "extensions").mkdir()
    shutil.copy2(layer_dir / "extensions" / "defer-runner", root / "extensions" / "defer-runner")
    shutil.copy2(layer_dir / "defer-runner" / "bootstrap.py", root / "defer-runner" / "bootstrap.py")
    (root / "defer-runner" / "deps").symlink_to(layer_dir / "defer-runner" / "deps")
    (root / "defer-runner" / "handler_lib").symlink_to(layer_dir / "defer-runner" / "handler_lib")
    (root / "python").symlink_to(layer_dir / "python")
    (root / "defer-runner" / "_defer_runner" / "__init__.py").write_text("")
    (root / "defer-runner" / "_defer_runner" / "__main__.py").write_text(PROBE)
    return root


@pytest.fixture
def shadowing_pythonpath(tmp_path: Path) -> Path:
    """A PYTHONPATH folder whose msgpack/boto3 would break the extension if they won."""
    evil = tmp_path / "function-site"
    for pkg in ("msgpack", "boto3", "extension", "_defer_runner", "handler_lib"):
        (evil / pkg).mkdir(parents=True)
        (evil / pkg / "__init__.py").write_text(f"raise ImportError('{pkg} from PYTHONPATH')\n")
    return evil


def run_launcher(launcher: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(launcher)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_launcher_runs_the_extension_with_its_own_deps_first(
        probe_layer: Path, shadowing_pythonpath: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    env = {"PATH": os.environ["PATH"], "PROBE_OUT": str(out),
           "PYTHONPATH": str(shadowing_pythonpath), "DEFER_RUNNER_PYTHON": sys.executable}
    proc = run_launcher(probe_layer / "extensions" / "defer-runner", env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = json.loads(out.read_text())
    here = probe_layer / "defer-runner"
    assert got["pid"] == proc.pid, "the launcher must exec python (signals reach it directly)"
    assert got["isolated"] == 1
    assert got["dont_write_bytecode"] is True
    assert got["main"] == "__main__"
    # Its own folder only: the function's side (python/) is not on the extension's path; the
    # folder itself leaves it once its packages are loaded (a task's `import bootstrap` is the
    # function's).
    assert got["sys_path"][0] == str(here / "deps") and str(here) not in got["sys_path"]
    assert str(probe_layer / "python") not in got["sys_path"]
    assert got["sys_path"][-1] == str(shadowing_pythonpath), "PYTHONPATH goes last"
    # Started without site processing (-S), it still has the interpreter's site-packages (a
    # virtual environment's when it runs in one), after its own and the standard library's.
    assert got["no_site"] == 1
    import site

    for folder in site.getsitepackages():
        assert folder in got["sys_path"][:-1], (folder, got["sys_path"])
    assert got["sys_path"].index(site.getsitepackages()[0]) > got["sys_path"].index(os.path.dirname(os.__file__))
    assert got["msgpack"] == str(here / "deps" / "msgpack" / "__init__.py")
    assert got["packer"] == "msgpack._cmsgpack", "the layer's compiled msgpack loads here"
    assert got["boto3"] == str(here / "deps" / "boto3" / "__init__.py")
    assert got["handler_lib"] == str(here / "handler_lib" / "__init__.py")  # its own copy
    assert got["name"] == "defer-runner"


def test_launcher_found_through_a_symlink_and_python3_from_path(
        probe_layer: Path, tmp_path: Path) -> None:
    if os.path.exists("/var/lang/bin/python3"):
        pytest.skip("a Lambda image: /var/lang/bin/python3 takes precedence over PATH")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    link = tmp_path / "elsewhere" / "defer-runner"
    link.parent.mkdir()
    link.symlink_to(probe_layer / "extensions" / "defer-runner")
    out = tmp_path / "probe.json"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PROBE_OUT": str(out)}
    proc = run_launcher(link, env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = json.loads(out.read_text())
    assert got["sys_path"][0] == str(probe_layer / "defer-runner" / "deps")
    assert Path(got["executable"]).parent in (bin_dir, Path(sys.executable).parent)


def test_launcher_without_python_fails_clearly(probe_layer: Path, tmp_path: Path) -> None:
    if os.path.exists("/var/lang/bin/python3"):
        pytest.skip("a Lambda image has /var/lang/bin/python3")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "readlink", "basename"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    proc = run_launcher(probe_layer / "extensions" / "defer-runner", {"PATH": str(bin_dir)})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 127
    assert "no python3 found" in err


def test_bootstrap_orders_sys_path(build_layer_module: ModuleType) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap", REPO / "layer" / "bootstrap.py")
    assert spec and spec.loader
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    here = "/opt/defer-runner"
    got = bootstrap.build_sys_path(["/usr/lib/python312.zip", "/opt/python", "/lib/site"], here,
                                   "/var/task:/opt/python::/lib/site:/var/runtime")
    assert got == ["/opt/defer-runner", "/opt/defer-runner/deps", "/usr/lib/python312.zip", "/opt/python",
                   "/lib/site", "/var/task", "/var/runtime"]


# --- botocore trimming (opt-in) -----------------------------------------------------------

CLIENTS = '''
import sys
sys.path.insert(0, sys.argv[1])
import boto3, botocore.exceptions
for name in ("sqs", "sns", "events", "sts", "s3", "lambda", "stepfunctions"):
    boto3.client(name, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
try:
    boto3.client("dynamodb", region_name="eu-west-1")
except botocore.exceptions.UnknownServiceError:
    print("dynamodb: unknown")
print("ok", boto3.__file__)
'''


def test_trimmed_botocore_still_makes_our_clients(
        layer_dir: Path, build_layer_module: ModuleType, tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    shutil.copytree(layer_dir / "defer-runner" / "deps", deps)
    saved = build_layer_module.trim_botocore(deps)
    kept = sorted(p.name for p in (deps / "botocore" / "data").iterdir() if p.is_dir())
    assert kept == ["events", "lambda", "s3", "sns", "sqs", "stepfunctions", "sts"]  # every service we call
    assert saved > 10_000_000
    for f in ("endpoints.json", "partitions.json", "sdk-default-configuration.json", "_retry.json"):
        assert (deps / "botocore" / "data" / f).is_file()
    proc = subprocess.run([sys.executable, "-I", "-c", CLIENTS, str(deps)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # Why trimming is not the default: a deferred task using another service would fail.
    assert lines[0] == "dynamodb: unknown"
    assert lines[1] == f"ok {deps / 'boto3' / '__init__.py'}"


def test_the_deploy_guide_names_everything_in_the_layers_extension_folder(layer_dir: Path) -> None:
    table = (REPO / "docs" / "deploy.md").read_text().split("## What is in the layer", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`defer-runner/([^/`]+)/?`", table))
    assert {p.name for p in (layer_dir / "defer-runner").iterdir()} - named == set()


def test_the_deploy_guide_states_the_layers_size_as_built(layer_build: tuple[Path, Path, str],
                                                          build_layer_module: ModuleType) -> None:
    layer_dir, layer_zip, _ = layer_build
    text = (REPO / "docs" / "deploy.md").read_text()
    stated = re.search(r"Layer size: about (\d+) MB unzipped, (\d+) MB zipped", text)
    assert stated, "docs/deploy.md no longer states the layer's size in the form this test reads"
    unzipped_mb = build_layer_module.tree_size(layer_dir) / 1e6
    zipped_mb = layer_zip.stat().st_size / 1e6
    # "about": within 10 % of what make layer builds today
    assert abs(int(stated[1]) - unzipped_mb) <= 0.1 * unzipped_mb, f"built: {unzipped_mb:.0f} MB unzipped"
    assert abs(int(stated[2]) - zipped_mb) <= 0.1 * zipped_mb, f"built: {zipped_mb:.0f} MB zipped"


def test_files_that_do_not_compile_are_named_once_with_their_reason(build_layer_module: ModuleType, tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "deps"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "ok.py").write_text("x = 1\n")
    (tree / "pkg" / "py2.py").write_text("print 'hello'\n")
    interpreters = {"3.11": sys.executable, "3.11-again": sys.executable}
    build_layer_module.compile_tree(tree, interpreters)
    lines = [line for line in capfd.readouterr().err.splitlines() if "source-only" in line]
    assert len(lines) == 1, lines
    assert "pkg/py2.py (python3.11, 3.11-again: SyntaxError" in lines[0]
    assert (tree / "pkg" / "__pycache__").is_dir()  # the others are compiled
