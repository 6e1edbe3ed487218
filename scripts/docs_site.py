"""Build hooks for the documentation site (mkdocs.yml names this file).

The pages are written to read well on GitHub: they link to the repository's files with
relative paths (``../bench/coldstart.png``, ``../examples/api_gateway/app.py``) and the
README is the front page. The site keeps those links working instead of asking the pages
to change: the README becomes ``index.md``, and every repository file a page links to is
published under ``repo/`` with the link rewritten to it. A public name without a docstring
or without a place in docs/api.md is a warning, which the strict build turns into a failure.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.plugins.lambda_defer")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PUBLISHED = "repo"  # where repository files outside docs/ appear in the site

# [text](target) and ![alt](target); a target with a scheme or only an anchor is left alone
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
_FENCE = re.compile(r"^(```|~~~)")

# The public surface: every name here must have a docstring and be named in docs/api.md.
PUBLIC_MODULES = ("handler_lib", "handler_lib.testing", "handler_lib.changes", "handler_lib.worker",
                  "handler_lib.consumer")


def _targets(markdown: str) -> Iterable[Tuple[int, int, str]]:
    """(start, end, target) of each relative link outside code blocks."""
    in_fence = False
    offset = 0
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
        elif not in_fence:
            for match in _LINK.finditer(line):
                target = match.group(2)
                if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#"):
                    yield offset + match.start(2), offset + match.end(2), target
        offset += len(line)


def _source_of(src_uri: str) -> Path:
    """Where the markdown of a site page lives in the repository."""
    if src_uri == "index.md":
        return ROOT / "README.md"
    if src_uri.startswith(PUBLISHED + "/"):
        return ROOT / src_uri[len(PUBLISHED) + 1:]
    return DOCS / src_uri


def _site_uri(path: Path) -> Optional[str]:
    """The site's uri for a repository file, or None when it is outside the repository."""
    path = path.resolve()
    if path == ROOT / "README.md":
        return "index.md"
    try:
        return path.relative_to(DOCS).as_posix()
    except ValueError:
        pass
    try:
        return f"{PUBLISHED}/{path.relative_to(ROOT).as_posix()}"
    except ValueError:
        return None


def on_files(files: Files, config: Any) -> Files:
    """Add the README as the front page and every repository file the pages link to."""
    files.append(File.generated(config, "index.md", abs_src_path=str(ROOT / "README.md")))
    todo: List[Path] = [ROOT / "README.md", *sorted(DOCS.glob("**/*.md"))]
    seen = {p.resolve() for p in todo}
    while todo:
        page = todo.pop()
        for _, _, target in _targets(page.read_text(encoding="utf-8")):
            path = (page.parent / target.split("#", 1)[0]).resolve()
            uri = _site_uri(path)
            if uri is None or not uri.startswith(PUBLISHED + "/") or path in seen:
                continue
            seen.add(path)
            if not path.is_file():
                continue  # the strict build reports the broken link on the page
            files.append(File.generated(config, uri, abs_src_path=str(path)))
            if path.suffix == ".md":
                todo.append(path)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point each relative link at the page or file it names in the site."""
    here = _source_of(page.file.src_uri).parent
    site_dir = os.path.dirname(page.file.src_uri)
    out: List[str] = []
    last = 0
    for start, end, target in _targets(markdown):
        path_part, _, anchor = target.partition("#")
        if not path_part:
            continue
        uri = _site_uri(here / path_part)
        if uri is None:
            log.warning("%s links outside the repository: %s", page.file.src_uri, target)
            continue
        new = os.path.relpath(uri, site_dir or ".").replace(os.sep, "/")
        out.append(markdown[last:start] + new + (f"#{anchor}" if anchor else ""))
        last = end
    out.append(markdown[last:])
    return "".join(out)


def on_pre_build(config: Any) -> None:
    """Every public name has a docstring and a place in docs/api.md."""
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    for module_name, name, obj in _public_names():
        if not _documented_in(api, module_name, name):
            log.warning("%s.%s is public but docs/api.md does not name it", module_name, name)
        if _needs_docstring(obj) and not inspect.getdoc(obj):
            log.warning("%s.%s is public but has no docstring", module_name, name)


def _public_names() -> Iterable[Tuple[str, str, Any]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            yield module_name, name, obj
            if module_name == "handler_lib" and name == "defer":
                for attr, member in _methods(type(obj)).items():
                    yield "handler_lib", f"defer.{attr}", member


def _methods(cls: type) -> Dict[str, Any]:
    return {name: member for name, member in vars(cls).items()
            if not name.startswith("_") and (callable(member) or isinstance(member, property))}


def _documented_in(api: str, module_name: str, name: str) -> bool:
    return f"`{name}`" in api or f"`{name}(" in api or f"`{module_name}.{name}`" in api


def _needs_docstring(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj) \
        or isinstance(obj, property) or (callable(obj) and not isinstance(obj, (str, bytes)))
