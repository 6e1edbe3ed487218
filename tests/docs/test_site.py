"""The documentation site (`make docs`): it builds strictly, every page of docs/ is in its
navigation, and in the built HTML every internal link and anchor resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


class _Page(HTMLParser):
    """The ids a page defines and the links it makes (href and src)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Set[str] = set()
        self.links: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif (name == "href" and tag == "a") or (name == "src" and tag == "img"):
                self.links.append(value)


def broken_links(site: Path) -> List[str]:
    """Each internal link of the site's pages that names a missing file or anchor."""
    pages: Dict[Path, _Page] = {}
    for html in site.rglob("*.html"):
        parser = _Page()
        parser.feed(html.read_text(encoding="utf-8"))
        pages[html.resolve()] = parser
    broken = []
    for html, page in sorted(pages.items()):
        if html.parent.name == "search" or html.name == "404.html":
            continue  # the theme's own pages
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("mailto:"):
                continue
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            if target.is_dir():
                target = target / "index.html"
            where = f"{html.relative_to(site)}: {link}"
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in pages[target.resolve()].ids:
                    broken.append(f"{where} (no such anchor)")
    return broken


def _build(out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = _build(out)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    return out


def test_every_internal_link_and_anchor_of_the_built_site_resolves(site: Path) -> None:
    assert (site / "index.html").exists() and (site / "reference.html").exists()
    assert broken_links(site) == []


def test_the_checker_finds_a_missing_page_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text('<h2 id="here">x</h2><a href="b.html#nowhere">b</a>'
                                     '<a href="#here">ok</a><a href="gone.html">gone</a>'
                                     '<img src="pic.png">')
    (tmp_path / "b.html").write_text('<h2 id="there">y</h2><a href="a.html#here">a</a>')
    assert broken_links(tmp_path) == ["a.html: b.html#nowhere (no such anchor)",
                                      "a.html: gone.html (no such file)",
                                      "a.html: pic.png (no such file)"]


def test_every_page_of_docs_is_in_the_navigation() -> None:
    from mkdocs.config import load_config
    from mkdocs.structure.nav import get_navigation
    from mkdocs.structure.files import get_files

    config = load_config(str(ROOT / "mkdocs.yml"))
    files = config.plugins.on_files(get_files(config), config=config)  # the hooks add the front page
    nav = get_navigation(files, config)
    in_nav = {page.file.src_uri for page in nav.pages}
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk - in_nav == set()
    assert "index.md" in in_nav  # the README, as the front page


def test_the_reference_page_shows_the_public_names(site: Path) -> None:
    reference = (site / "reference.html").read_text(encoding="utf-8")
    for name in ("Defer", "sqs", "sns", "event", "task", "after", "asgi", "Task", "TaskOptions",
                 "ExtensionUnavailableError", "ConfigError", "capture", "Captured",
                 "ChangeTarget", "defer_change"):
        assert f'id="handler_lib.' in reference
        assert f">{name}<" in reference or f"{name}</code>" in reference, name


def test_a_public_name_missing_from_the_api_page_fails_the_build(tmp_path: Path) -> None:
    # a copy of the repository's docs whose api.md no longer names `defer.after`
    import shutil

    work = tmp_path / "repo"
    for part in ("docs", "scripts", "handler_lib", "bench", "examples", "lambda_sandbox"):
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "mkdocs.yml", work / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", work / "README.md")
    api = work / "docs" / "api.md"
    api.write_text(api.read_text().replace("`defer.after`", "`defer.later`").replace("`after`", "`later`"))
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                           cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert built.returncode != 0
    assert "handler_lib.defer.after is public but docs/api.md does not name it" in built.stderr
