"""Every ```python block of README.md and docs/*.md runs here, and every relative link resolves.

A block runs as a module of its own (registered in ``sys.modules``, so ``@defer.task`` functions
are found by name), inside ``handler_lib.testing.capture()``, with ``DEFER_SOCKET`` and
``DEFER_JOURNAL_DIR`` in the test's tmp_path and these placeholders in the environment, each
naming a fresh moto resource: ``QUEUE_URL``, ``FIFO_QUEUE_URL``, ``TOPIC_ARN``, ``BUS_NAME``,
``DLQ_URL``. Conventions, as HTML comments (GitHub does not render them) next to a block:

- ``<!-- sample: skip REASON -->`` before it: shown, not run (the reason is required);
- ``<!-- sample: continue -->`` before it: runs in the namespace of the file's previous block;
- ``<!-- sample: module NAME -->`` before it: the block is the file ``NAME.py`` of the text (say
  ``tasks``), importable by that name from the page's later blocks;
- ``<!-- sample: setup`` + lines of Python + ``-->`` before it: hidden code run first, standing
  in for the reader's own code (``store``, ``NewOrder``, ...);
- ``<!-- sample: check`` + lines of Python + ``-->`` after it: hidden assertions run after it in
  its namespace, so a sample is shown to do what the text says, not only to import.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from handler_lib._dispatch import DISPATCHER
from handler_lib.testing import capture

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"<!--\s*sample:\s*(skip|continue|module|setup|check)\b(.*?)-->", re.S)


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    skip: Optional[str] = None
    continues: bool = False
    module: Optional[str] = None
    setup: List[str] = field(default_factory=list)
    check: List[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"


def python_blocks(page: Path) -> List[Block]:
    """The page's ```python blocks, with the directives between them applied."""
    lines = page.read_text(encoding="utf-8").splitlines()
    fences: List[Tuple[int, int, str]] = []  # (opening index, closing index, language)
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        fences.append((i, j, fence.group(1)))
        i = j + 1
    blocks: List[Block] = []
    for n, (open_at, close_at, lang) in enumerate(fences):
        if lang != "python":
            continue
        before = "\n".join(lines[fences[n - 1][1] + 1 if n else 0:open_at])
        next_open = fences[n + 1][0] if n + 1 < len(fences) else len(lines)
        after = "\n".join(lines[close_at + 1:next_open])
        block = Block(page, open_at + 1, "\n".join(lines[open_at + 1:close_at]) + "\n")
        for kind, body in DIRECTIVE.findall(before):
            if kind != "check":  # a check before a block belongs to the block above
                _apply(block, kind, body)
        if not after.split("<!--", 1)[0].strip():  # a check comes right after its block
            for kind, body in DIRECTIVE.findall(after):
                if kind == "check":
                    _apply(block, kind, body)
        blocks.append(block)
    return blocks


def _apply(block: Block, kind: str, body: str) -> None:
    body = body.strip("\n")
    if kind == "skip":
        assert body.strip(), f"{block.id}: a skipped sample needs a reason"
        block.skip = body.strip()
    elif kind == "continue":
        block.continues = True
    elif kind == "module":
        block.module = body.strip()
    elif kind == "setup":
        block.setup.append(_dedent(body))
    elif kind == "check":
        block.check.append(_dedent(body))


def _dedent(body: str) -> str:
    import textwrap

    return textwrap.dedent(body) + "\n"


ALL_BLOCKS = [block for page in PAGES for block in python_blocks(page)]


@pytest.fixture(scope="module")
def placeholders(moto_endpoint: str) -> Dict[str, str]:
    from tests.support.moto_server import create_resources

    res = create_resources(moto_endpoint, "docs")
    return {"QUEUE_URL": res.queue_url, "FIFO_QUEUE_URL": res.fifo_queue_url, "TOPIC_ARN": res.topic_arn,
            "BUS_NAME": res.bus_name, "DLQ_URL": res.dlq_url}


@pytest.fixture
def sample_env(placeholders: Dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in placeholders.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEFER_SOCKET", str(tmp_path / "defer.sock"))
    monkeypatch.setenv("DEFER_JOURNAL_DIR", str(tmp_path / "journal"))
    DISPATCHER.reset()
    try:
        yield
    finally:
        DISPATCHER.reset()


_namespaces: Dict[Path, types.ModuleType] = {}


_registered: List[str] = []


@pytest.fixture(scope="module", autouse=True)
def _sample_modules() -> Iterator[None]:
    """The samples' modules stay importable while this file's tests run, then the previous
    ``sys.modules`` entries come back (a sample's ``tasks`` must not shadow an example's)."""
    saved = dict(sys.modules)
    try:
        yield
    finally:
        for name in _registered:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                sys.modules.pop(name, None)
        _namespaces.clear()
        _registered.clear()


def _module_for(block: Block) -> types.ModuleType:
    if block.continues:
        module = _namespaces.get(block.page)
        assert module is not None, f"{block.id}: 'continue' needs an earlier block on the page"
        return module
    name = block.module or "docs_sample_" + re.sub(r"\W", "_", block.id)
    module = types.ModuleType(name)
    module.__file__ = str(block.page)
    _namespaces[block.page] = module
    sys.modules[name] = module
    _registered.append(name)
    return module


def _run(code: str, module: types.ModuleType, what: str) -> None:
    exec(compile(code, what, "exec"), module.__dict__)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_sample_runs(block: Block, sample_env: None) -> None:
    if block.skip:
        pytest.skip(block.skip)
    run_block(block)


def run_block(block: Block) -> None:
    module = _module_for(block)
    with capture():
        for setup in block.setup:
            _run(setup, module, f"{block.id} (setup)")
        _run(block.code, module, block.id)
        for check in block.check:
            _run(check, module, f"{block.id} (check)")


def test_the_samples_are_found() -> None:
    """The parser sees the pages' blocks (an empty parametrization would pass silently)."""
    assert len(ALL_BLOCKS) >= 10
    assert any(b.page.name == "README.md" for b in ALL_BLOCKS)
    skipped = [b.id for b in ALL_BLOCKS if b.skip]
    assert len(skipped) <= len(ALL_BLOCKS) // 4, f"most samples must run; skipped: {skipped}"


def test_the_directives_are_read_and_a_false_check_fails(tmp_path: Path, sample_env: None) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- sample: module docs_probe_tasks -->\n```python\nX = 1\n```\n\n"
        "<!-- sample: setup\ny = 2\n-->\n```python\nfrom docs_probe_tasks import X\nz = X + y\n```\n"
        "<!-- sample: check\nassert z == 4\n-->\n\n```bash\nls\n```\n\n"
        "<!-- sample: continue -->\n```python\nz += 1\n```\n\n"
        "<!-- sample: skip needs a cluster -->\n```python\nraise SystemExit\n```\n", encoding="utf-8")
    blocks = python_blocks(page)
    assert [(b.module, len(b.setup), len(b.check), b.continues, b.skip) for b in blocks] == [
        ("docs_probe_tasks", 0, 0, False, None), (None, 1, 1, False, None), (None, 0, 0, True, None),
        (None, 0, 0, False, "needs a cluster")]
    sys.modules.pop("docs_probe_tasks", None)
    run_block(blocks[0])
    with pytest.raises(AssertionError):  # z is 3: the check catches a sample that says otherwise
        run_block(blocks[1])
    run_block(blocks[2])
    assert _namespaces[page].__dict__["z"] == 4


# -- links ------------------------------------------------------------------------------
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
#: Pages written on another branch, linked to before they land: skipped (not failed) while
#: missing, checked like any other once they exist.
PENDING = {"docs/performance.md": "written on the wt-perf branch"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links() -> List[Tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        found += [(page, m.group(1)) for m in LINK.finditer(text)]
    return found


ALL_LINKS = [(p, t) for p, t in _links() if not re.match(r"^[a-z]+:", t)]


@pytest.mark.parametrize("page,target", ALL_LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in ALL_LINKS])
def test_relative_link_resolves(page: Path, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    rel = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
    if not resolved.exists() and rel in PENDING:
        pytest.skip(f"{rel} is {PENDING[rel]}")
    assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)} links to #{anchor}, no such heading in {rel}"


def test_the_links_are_found() -> None:
    assert any(p.name == "README.md" and t.startswith("docs/") for p, t in ALL_LINKS)


def test_no_page_points_at_files_users_do_not_have() -> None:
    """DESIGN.md and the shared reference notes live outside the repository."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for name in ("DESIGN.md", "shared/reference", "platform-2026.md"):
            assert name not in text, f"{page.relative_to(ROOT)} mentions {name}, which users do not have"


# -- completeness -----------------------------------------------------------------------
def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_the_api_page_names_every_public_name() -> None:
    import handler_lib
    from handler_lib import changes, testing

    text = _page("api.md")
    methods = [n for n in dir(handler_lib.Defer) if not n.startswith("_")]
    assert {"sqs", "after", "asgi", "json_default"} <= set(methods)
    names = ([f"`{n}`" for n in handler_lib.__all__ if n != "Defer"] + [f"`defer.{m}`" for m in methods]
             + [f"`{n}`" for n in testing.__all__] + ["`run_tasks()`", "`run_after()`", "`.defer`"]
             + [f"`{n}" for n in ("capture_changes", "defer_change", "ChangeTarget")]
             + [f"`{n}`" for n in ("handler_lib.changes", "handler_lib.testing")]
             + ["python -m handler_lib.redrive"])
    assert {"capture_changes", "defer_change", "ChangeTarget"} <= set(changes.__all__)
    missing = [n for n in names if n not in text]
    assert not missing, f"docs/api.md does not document {missing}"


def test_the_configuration_page_names_every_variable() -> None:
    from handler_lib import config

    text = _page("configuration.md")
    variables = [getattr(config, n) for n in dir(config) if n.startswith("ENV_")]
    assert len(variables) >= 12
    missing = [v for v in variables if f"`{v}`" not in text]
    assert not missing, f"docs/configuration.md does not list {missing}"
    assert "`AWS_LAMBDA_EXEC_WRAPPER`" in text and "/opt/defer-runner/exec-wrapper" in text


def test_the_operations_page_names_every_metric_and_failure_code() -> None:
    from handler_lib.engine import outcome

    text = _page("operations.md")
    source = (ROOT / "extension" / "metrics.py").read_text(encoding="utf-8")
    from extension import metrics as drain_metrics

    metrics = set(re.findall(r'add\("(\w+)"', source)) | set(drain_metrics.COUNTS)
    assert {"enqueued", "delivered", "given_up", "after_failed", "enqueue_to_delivery"} <= metrics
    codes = [v for n, v in vars(outcome).items() if n.isupper() and isinstance(v, str) and v.startswith("Defer.")]
    missing = [f"`{m}`" for m in sorted(metrics) if f"`{m}`" not in text]
    missing += [c for c in codes if c != "Defer.UnknownKind" and f"`{c}`" not in text]
    assert not missing, f"docs/operations.md does not name {missing}"
