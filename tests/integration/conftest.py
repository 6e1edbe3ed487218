"""Fixtures shared by the integration tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Tuple

import pytest

from tests.support.function_package import task_root
from tests.support.rie import Rie

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="session")
def packaged_function(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """packaged_function(name) -> functions/<name> with the packages of its requirements.txt
    beside its code, as its deployment package would hold them (built once a session): the
    sandbox shows a function nothing of this virtualenv."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = task_root(FUNCTIONS / name, tmp_path_factory.mktemp(f"function-{name}") / "task")
        return built[name]

    return get


@pytest.fixture
def rie_function(rie_factory, built_layer, aws_resources, fault_proxy, tmp_path) -> Tuple[Callable[..., Rie], Any, Any]:
    """(start, resources, fault_proxy): start(function_dir, timeout_s, **env) runs
    function_dir's app.handler under RIE with the built layer, every AWS call through the
    fault proxy, and a socket and journal of its own."""
    res = aws_resources()

    def start(function_dir: Path, timeout_s: float, **env: str) -> Rie:
        full_env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
                    "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                    "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), **env}
        return rie_factory(built_layer, function_dir, "app.handler", env=full_env, timeout_s=timeout_s)

    return start, res, fault_proxy
