"""Every repository path and code name the docs write exists, so a rename fails a test
instead of misleading the next reader.

What is checked, in ``README.md`` and every ``docs/*.md`` (code blocks included):

- **paths**: a path that starts with a top-level folder of the repo (``bananaflow/``,
  ``tests/``, ``bench/``, ``flows/``, ``tools/``, ``examples/``, ``docs/`` ...) must exist; a
  ``.py`` path under another folder, or a folder named after a subpackage (``limits/``), is read
  inside ``bananaflow/`` (``providers/classify.py``); a bare Python file name (``meters.py``)
  must be the name of some file of the repo. Parts of URLs and of other paths
  (``~/.cache/bananaflow/spool``, ``s3://bucket/key``) are not read as paths.
- **links**: a relative Markdown link must point at a file beside the doc, and its ``#anchor``
  at one of that file's headings.
- **dotted names** are read as code when they start with ``bananaflow.``/``bananaflow_prefect.``,
  with a Prefect-side package (``flows.``, ``tasks.``, ``blocks.``, ``deployments.``, read as
  ``bananaflow_prefect.…``), or with the name of any module of ours (``dispatch.Dispatcher``), or
  when they name a class (a CapWords part: ``WorkStore.chunks``, ``ratelimit.RateController``).
  Such a name must resolve: the longest importable module prefix is imported and the rest looked
  up with ``getattr`` (fields of dataclasses and pydantic models count). A name that starts
  with a group of ``RunOptions`` (``limits.adaptive``, ``delivery.bucket``) must be a field of
  it. ``python`` code blocks are read for their ``import`` lines only (their other dotted names
  are local variables). Event and resource names spelled like modules are listed in
  ``NOT_CODE``. Anything else (``pandas.read_parquet``, ``e.g``, host names) is prose.

Code docstrings and comments (and ``tools/*.sh``, the ``Makefile``) are held to the rules that
cannot mistake a variable for a module: the path rules, and names starting with
``bananaflow.``/``bananaflow_prefect.``.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import os
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from bananaflow.options import RunOptions
from tests.paths import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Folders at the top of the repo that docs name paths under.
TOP_FOLDERS = {"bananaflow", "bananaflow_prefect", "tests", "bench", "flows", "tasks", "blocks", "deployments",
               "tools", "examples", "docs"}
#: Folders of the Prefect side, installed as ``bananaflow_prefect.<folder>``.
PREFECT_SIDE = {"flows", "tasks", "blocks", "deployments"}
#: Prefect event and resource names that read like modules but are not code.
NOT_CODE = {"catalog.updated", "catalog.acme", "bananaflow.batch.completed", "bananaflow.images.s3",
            # Google Cloud's own names: a service host and IAM permissions
            "storage.googleapis.com", "storage.objects.list", "storage.objects.create", "storage.objects.get",
            "storage.objects.delete"}
#: A dotted token whose last part is one of these is a file name (``manifest.csv``), not code.
FILE_SUFFIXES = {"py", "md", "csv", "tsv", "json", "jsonl", "parquet", "xlsx", "xml", "yaml", "yml", "toml", "j2",
                 "png", "jpg", "jpeg", "webp", "txt", "gz", "lock", "sh", "log", "pid", "html", "zip", "ini", "cfg"}

# a path: not inside a URL, a home folder or a longer path (the lookbehind), stops at <, {, *, space ...
PATH = re.compile(r"(?<![\w./:~@{}<>$-])((?:[\w-]+/)+[\w.-]*)")
BARE_PY = re.compile(r"(?<![\w./:~@{}<>$-])([\w-]+\.py)(?![\w/])")
# a dotted name, whole (atomic group: no shorter piece of a longer token), not before / or -
DOTTED = re.compile(r"(?<![\w./:@~$-])(?>([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+))(?![\w/-]|\.\w)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*```\s*(\w*)")
PY_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+([\w\s,]+)|import\s+([\w.]+))")
CAPWORDS = re.compile(r"^_?[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")


@dataclass(frozen=True)
class Problem:
    where: str
    line: int
    reference: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: `{self.reference}`: {self.reason}"


# --- what exists ---------------------------------------------------------------------------------


@cache
def repo_file_names() -> frozenset[str]:
    """Names of the files of the repo (not of .venv, .git or .state)."""
    skip = {".venv", ".git", ".state", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    names: set[str] = set()
    for _, folders, files in os.walk(ROOT):
        folders[:] = [f for f in folders if f not in skip and not f.endswith(".egg-info")]
        names.update(files)
    return frozenset(names)


@cache
def project_modules() -> dict[str, str]:
    """Every module of ours by its import name -> the same (packages included)."""
    found: dict[str, str] = {}
    folders = {"bananaflow": "bananaflow", **{f: f"bananaflow_prefect.{f}" for f in PREFECT_SIDE}}
    for folder, name in folders.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = str(path)
    return found


@cache
def modules_by_short_name() -> dict[str, list[str]]:
    """``dispatch`` -> ``["bananaflow.generation.dispatch"]``: the short names docs use."""
    short: dict[str, list[str]] = {}
    for module in project_modules():
        short.setdefault(module.rpartition(".")[2], []).append(module)
    return short


@cache
def classes_by_name() -> dict[str, list[str]]:
    """``WorkStore`` -> the modules that define a class of that name at their top level."""
    found: dict[str, list[str]] = {}
    for module, path in project_modules().items():
        for node in ast.parse(Path(path).read_text()).body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(module)
    return found


def _has_member(obj: Any, name: str) -> bool:
    """``getattr`` that also counts fields without a class-level default (dataclass, pydantic,
    annotations), which docs name as ``WorkItem.sku``."""
    if hasattr(obj, name):
        return True
    if isinstance(obj, type):
        if is_dataclass(obj) and name in {f.name for f in fields(obj)}:
            return True
        if issubclass(obj, BaseModel) and name in obj.model_fields:
            return True
        return any(name in getattr(klass, "__annotations__", {}) for klass in obj.__mro__)
    return False


def resolve(dotted: str) -> str | None:
    """None if ``dotted`` names something that exists, else why not: the longest importable
    module prefix is imported and the rest looked up attribute by attribute."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        if module_name not in project_modules() and cut > 1:
            continue
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        for i, attr in enumerate(parts[cut:], start=cut):
            if not _has_member(obj, attr):
                kind = "module " if isinstance(obj, ModuleType) else ""
                return f"{kind}`{'.'.join(parts[:i])}` has no `{attr}`"
            obj = getattr(obj, attr, None)
        return None
    return f"no module `{parts[0]}`"


def resolve_option_path(dotted: str) -> str | None:
    """None if ``dotted`` is a field path of ``RunOptions`` (``limits.adaptive``)."""
    model: type[BaseModel] | None = RunOptions
    for i, part in enumerate(dotted.split(".")):
        if model is None or part not in model.model_fields:
            return f"`{'.'.join(dotted.split('.')[:i]) or 'RunOptions'}` has no option `{part}`"
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return None


# --- what a doc names ------------------------------------------------------------------------------


def check_path(path: str) -> str | None:
    """None if ``path`` (as written in a doc) exists in the repo."""
    path = path.rstrip(".,;:")
    first = path.split("/", 1)[0]
    if first in TOP_FOLDERS:
        return None if (ROOT / path).exists() else "no such file or folder in the repository"
    if path.endswith(".py") or (path.endswith("/") and (ROOT / "bananaflow" / first / "__init__.py").exists()):
        if (ROOT / path).exists() or (ROOT / "bananaflow" / path).exists():
            return None
        return "no such file in the repository (nor under bananaflow/)"
    return None  # someone's own file (`../photos/`, `s3://...`), not ours


def check_bare_py(name: str) -> str | None:
    return None if name in repo_file_names() else "no file of that name in the repository"


def check_dotted(name: str) -> str | None:
    """None if ``name`` is prose, or code that resolves (the rule in the module docstring)."""
    parts = name.split(".")
    if name in NOT_CODE or parts[-1] in FILE_SUFFIXES:
        return None
    first = parts[0]
    if first in ("bananaflow", "bananaflow_prefect"):
        return resolve(name)
    tries: list[str | None] = []
    if first in RunOptions.model_fields:
        tries.append(resolve_option_path(name))
    if first in PREFECT_SIDE:
        tries.append(resolve(f"bananaflow_prefect.{name}"))
    for module in modules_by_short_name().get(first, []):
        tries.append(resolve(".".join([module, *parts[1:]])))
    if not tries and CAPWORDS.match(first):
        tries += [resolve(".".join([module, *parts])) for module in classes_by_name().get(first, [])]
        if not tries:
            return f"no class `{first}` in bananaflow or bananaflow_prefect"
    if not tries and importlib.util.find_spec(first) is not None:
        return None  # a library's name (`httpx.AsyncClient`): not ours to check
    if not tries:
        if any(CAPWORDS.match(part) for part in parts[1:]):
            return f"no module `{first}` in bananaflow or bananaflow_prefect"
        return None  # prose, a third-party name or someone else's setting
    return None if None in tries else tries[0]


def check_link(doc: Path, target: str) -> str | None:
    """None if a relative link ``target`` in ``doc`` points at a file (and heading) that exists."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return None  # http:, https:, mailto:
    file_part, _, anchor = target.partition("#")
    file = (doc.parent / file_part).resolve() if file_part else doc
    if not file.exists():
        return f"no file {file_part} beside {doc.relative_to(ROOT)}"
    if anchor and file.suffix == ".md" and anchor not in heading_anchors(file):
        return f"no heading with the anchor #{anchor} in {file.relative_to(ROOT)}"
    return None


def heading_anchors(doc: Path) -> set[str]:
    """GitHub's anchors for the headings of ``doc``."""
    anchors = set()
    for line in doc.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def doc_problems(doc: Path, text: str | None = None) -> Iterator[Problem]:
    """What ``doc`` (or ``text`` read as if it were ``doc``) names that does not exist."""
    where = str(doc.relative_to(ROOT))
    language = None  # inside a fenced block: its language ("" if none)
    for number, line in enumerate((doc.read_text() if text is None else text).splitlines(), start=1):
        if fence := FENCE.match(line):
            language = None if language is not None else fence.group(1)
            continue
        found = [(m, check_path(m)) for m in PATH.findall(line)]
        found += [(m, check_bare_py(m)) for m in BARE_PY.findall(line)]
        found += [(m, check_link(doc, m)) for m in LINK.findall(line)]
        if language in ("python", "py"):
            found += [(m, resolve(m)) for m in python_imports(line)]
        else:
            found += [(m, check_dotted(m)) for m in DOTTED.findall(line)]
        yield from (Problem(where, number, ref, reason) for ref, reason in found if reason)


def python_imports(line: str) -> list[str]:
    """The names of ours a ``python`` block's import line imports (``a.b.c`` for ``from a.b import c``)."""
    match = PY_IMPORT.match(line)
    if not match:
        return []
    module = match.group(1) or match.group(3)
    if module.split(".")[0] not in ("bananaflow", "bananaflow_prefect"):
        return []
    names = [n.strip() for n in (match.group(2) or "").split(",") if n.strip()]
    return [f"{module}.{n}" for n in names] or [module]


# --- what code docstrings and comments name --------------------------------------------------------


def prose_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each docstring line and comment of a Python file; every line of
    a shell script or the Makefile (their commands name paths too)."""
    source = path.read_text()
    if path.suffix != ".py":
        yield from enumerate(source.splitlines(), start=1)
        return
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                for offset, text in enumerate(first.value.value.splitlines()):
                    yield first.lineno + offset, text
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def code_problems(path: Path) -> Iterator[Problem]:
    where = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    for number, text in prose_of(path):
        found = [(m, check_path(m)) for m in PATH.findall(text)]
        found += [(m, check_bare_py(m)) for m in BARE_PY.findall(text)]
        found += [(m, resolve(m)) for m in DOTTED.findall(text)
                  if m.split(".")[0] in ("bananaflow", "bananaflow_prefect") and m not in NOT_CODE
                  and m.split(".")[-1] not in FILE_SUFFIXES]
        yield from (Problem(where, number, ref, reason) for ref, reason in found if reason)


CODE_FOLDERS = ["bananaflow", "flows", "tasks", "blocks", "deployments", "bench", "tests", "examples"]


def code_files() -> list[Path]:
    python = [p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted([*python, *(ROOT / "tools").glob("*.sh"), ROOT / "Makefile"])


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_and_name_a_doc_writes_exists(doc: Path) -> None:
    problems = [str(p) for p in doc_problems(doc)]
    assert not problems, "the doc names what does not exist (fix the doc, or NOT_CODE if it is not code):\n" + "\n".join(
        problems
    )


def test_docstrings_and_comments_name_paths_and_modules_that_exist() -> None:
    problems = [str(p) for path in code_files() for p in code_problems(path)]
    assert not problems, "docstrings or comments name what does not exist:\n" + "\n".join(problems)


def test_a_stale_docstring_or_comment_is_reported(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text('''"""Checked by tests/test_architecture.py, see limit_backends.py."""
import logging

log = logging.getLogger("bananaflow.not.a.module")  # a string, not prose: not read


def f(settings):
    """``settings.kind`` is a variable; ``bananaflow.ratelimit.RateController`` was a module."""
    return settings.kind  # before the split: bananaflow/simulator/
''')
    assert [(p.line, p.reference) for p in code_problems(module)] == [
        (1, "tests/test_architecture.py"), (1, "limit_backends.py"), (8, "bananaflow.ratelimit.RateController"),
        (9, "bananaflow/simulator/"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see `bananaflow.nowhere.thing`", "`bananaflow.nowhere.thing`: module `bananaflow` has no `nowhere`"),
        ("`ratelimit.RateController:` meters", "no module `ratelimit`"),
        ("`RateControler.slot` (a typo)", "no class `RateControler`"),
        ("(limit_backends.py: in-process)", "no file of that name"),
        ("`bananaflow/preflight.py`", "no such file or folder"),
        ("`providers/nothing.py` maps", "nor under bananaflow/"),
        ("  limits/nothing/  rate control", "nor under bananaflow/"),
        ("`dispatch.Dispatcher.nothing` sends", "has no `nothing`"),
        ("`limits.no_such_option: 3`", "has no option `no_such_option`"),
        ("[x](nowhere.md)", "no file nowhere.md"),
        ("[x](running.md#no-such-heading)", "no heading"),
    ],
)
def test_a_missing_reference_is_reported(text: str, expected: str) -> None:
    problems = [str(p) for p in doc_problems(ROOT / "docs" / "architecture.md", text)]
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "text",
    [
        "`bananaflow.catalog.loader.open_catalog` and `bananaflow_prefect.flows.catalog_flow.catalog_to_images`",
        "`dispatch.Dispatcher.generate`, `WorkStore.chunks`, `tasks.generation.generate_images`",
        "`limits.adaptive: false`, `delivery.bucket`, `blocks.gcp_credentials`, `bananaflow/planning/preflight.py`",
        "`providers/classify.py`, `meters.py`, `~/.cache/bananaflow/spool`, https://example.com/bananaflow/x.py",
        "e.g. `pandas.read_parquet`, `manifest.csv`, generativelanguage.googleapis.com/v1beta, `catalog.updated`",
        "`httpx.AsyncClient`, `tenacity.RetryError`, `RateController.slot`, `WorkItem.sku`, aiplatform.googleapis.com",
        "[running](running.md#vertex-ai), [web](https://github.com/x/y.md)",
    ],
)
def test_prose_urls_and_existing_names_pass(text: str) -> None:
    assert [str(p) for p in doc_problems(ROOT / "docs" / "architecture.md", text)] == []

