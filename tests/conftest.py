"""Shared fixtures: real moto server over HTTP, a fault proxy in front of it, and AWS's RIE.

No mocks where a real part runs here (DESIGN.md, 'Real parts in tests'). Fixtures:

- moto_server (session)   -> tests.support.moto_server.MotoServer
- moto_endpoint (session) -> "http://127.0.0.1:<port>"
- aws_env (session)       -> dict of AWS_* vars pointing at moto (also applied to os.environ)
- clean_environ (autouse) -> os.environ restored after every test
- aws_resources           -> factory(prefix=None) -> AwsResources (unique queues/topics/bus)
- fault_proxy             -> fresh FaultProxy in front of moto per test (.endpoint_url)
- rie_binary (session)    -> Path of the RIE binary (skips locally / fails in CI if missing)
- rie_factory             -> factory(layer_dir, task_dir, handler, env=None, timeout_s=10, **kw)
                             -> started Rie; all stopped at teardown, logs printed
- empty_layer             -> tmp dir with extensions/ and python/ (a layer with nothing in it)
- built_layer (session)   -> REPO_ROOT/dist/layer from `make layer` (skips locally / fails in CI
                             if missing; DEFER_TEST_LAYER overrides the path)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `from tests.support... import` and the packages under test
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.fault_proxy import FaultProxy  # noqa: E402
from tests.support.moto_server import (  # noqa: E402
    REAL_AWS_VARS,
    AwsResources,
    MotoServer,
    aws_env_for,
    create_resources,
)
from tests.support.rie import Rie, find_rie_binary  # noqa: E402


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session (a subprocess; DEFER_TEST_MOTO=thread for in-process)."""
    server = MotoServer(log_dir=str(tmp_path_factory.mktemp("moto")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: MotoServer) -> str:
    """Base URL of the moto server, e.g. http://127.0.0.1:41234."""
    return moto_server.endpoint_url


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """Env vars that point boto3 (in any process) at moto with dummy credentials."""
    return aws_env_for(moto_endpoint)


@pytest.fixture(scope="session", autouse=True)
def _aws_session_environ(aws_env: dict[str, str]) -> Iterator[None]:
    """Apply aws_env to os.environ for the whole session; strip anything that could reach
    real AWS (profiles, tokens, container/web-identity credentials, per-service endpoints)."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key in REAL_AWS_VARS or key.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[key]
    os.environ.update(aws_env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Restore os.environ after each test, so env changes never leak between tests."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_leftover_periodic_hooks() -> Iterator[None]:
    """A @defer.every hook a test (or a docs sample) registers would run after the responses
    of every later in-process invoke: each test gets the registry back as it found it."""
    from handler_lib import _hooks

    saved = _hooks._hooks[:]
    try:
        yield
    finally:
        _hooks._hooks[:] = saved


@pytest.fixture
def aws_resources(moto_endpoint: str) -> Callable[..., AwsResources]:
    """Factory: aws_resources(prefix=None) creates a fresh, uniquely named set of queues,
    FIFO queue, DLQ, SNS topics (raw delivery to queues) and an EventBridge bus+rule->queue."""

    def make(prefix: str | None = None) -> AwsResources:
        return create_resources(moto_endpoint, prefix)

    return make


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of moto (own port, no rules, zero counts);
    use `.endpoint_url` as AWS_ENDPOINT_URL for the code under test."""
    proxy = FaultProxy(moto_endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def rie_binary() -> Path:
    """The RIE binary (`make rie`). Missing: skip locally, fail in CI."""
    path = find_rie_binary()
    if path is None:
        _missing("RIE binary missing: run `make rie` (extracts it from the aws-sam-cli wheel)")
    assert path is not None
    return path


def _missing(msg: str) -> None:
    """Missing prerequisite: skip locally, fail in CI (CI must run everything)."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def built_layer() -> Path:
    """The built layer (`make layer` -> dist/layer), i.e. exactly what lands in /opt."""
    layer = Path(os.environ.get("DEFER_TEST_LAYER") or REPO_ROOT / "dist" / "layer")
    if not (layer / "extensions").is_dir():
        _missing(f"layer not built at {layer}: run `make layer`")
    return layer


@pytest.fixture
def empty_layer(tmp_path: Path) -> Path:
    """A layer directory with empty extensions/ and python/ (nothing runs beside the runtime)."""
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "python").mkdir()
    return layer


@pytest.fixture
def rie_factory(rie_binary: Path, tmp_path: Path) -> Iterator[Callable[..., Rie]]:
    """Factory: rie_factory(layer_dir, task_dir, handler, env=None, timeout_s=10, **kw)
    returns a started Rie (see tests/support/rie.py). All are stopped (SIGTERM -> SHUTDOWN,
    then SIGKILL of the whole namespace) at teardown; their logs are printed so they show
    up in pytest's report of a failing test."""
    started: list[Rie] = []

    def start(layer_dir: str | os.PathLike[str], task_dir: str | os.PathLike[str], handler: str,
              env: dict[str, str] | None = None, timeout_s: float = 10, **kw: Any) -> Rie:
        kw.setdefault("log_dir", tmp_path / f"rie-{len(started)}")
        rie = Rie(layer_dir, task_dir, handler, env=env, timeout_s=timeout_s,
                  rie_binary=rie_binary, **kw)
        started.append(rie)
        return rie.start()

    try:
        yield start
    finally:
        for rie in started:
            rie.stop()
        for n, rie in enumerate(started):
            print(f"----- RIE #{n} logs ({rie.log_path}) -----\n{rie.logs()[-20000:]}")


# -- markers by folder -------------------------------------------------------------------
#: Each test folder's layer (pyproject.toml registers the markers; tests/README.md says what
#: each runs). `pytest -m unit` etc. select by it; a test file in a folder not listed here,
#: or a test marked by hand with a second layer, stops the collection.
LAYER_OF_FOLDER = {
    "unit": "unit", "asgi": "unit",
    "integration": "integration", "changes": "integration", "docs": "integration", "examples": "integration",
    "chaos": "integration",
    "sandbox": "sandbox", "harness": "sandbox",
    "packaging": "packaging",
}
LAYERS = ("unit", "integration", "sandbox", "packaging")


def layer_of(path: Path) -> str | None:
    """The layer of a test file by the folder under tests/ it sits in (None: not mapped)."""
    try:
        parts = path.resolve().relative_to(REPO_ROOT / "tests").parts
    except ValueError:
        return None
    return LAYER_OF_FOLDER.get(parts[0]) if len(parts) > 1 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        layer = layer_of(Path(item.path))
        if layer is not None:
            item.add_marker(getattr(pytest.mark, layer))
        marked = sorted({m.name for m in item.iter_markers() if m.name in LAYERS})
        if len(marked) != 1:
            wrong.append(f"{item.nodeid}: {marked or 'no layer'}")
    if wrong:
        raise pytest.UsageError(
            "every test needs exactly one of the markers " + ", ".join(LAYERS) + " (by its folder: "
            "LAYER_OF_FOLDER in tests/conftest.py):\n  " + "\n  ".join(wrong[:20])
            + (f"\n  ... and {len(wrong) - 20} more" if len(wrong) > 20 else ""))
