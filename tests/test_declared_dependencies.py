"""Every third-party module a package imports is declared by that package (issue 16 item 6).

A module that arrives only transitively (pyyaml through another library, huggingface_hub through transformers)
breaks the day that library drops it. The imports are read from the source with ``ast`` (every ``import`` and
``from ... import`` outside ``if TYPE_CHECKING``), mapped to their distributions with
``importlib.metadata.packages_distributions`` and checked against the package's dependencies and extras.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from gravity_testing import REPO

PACKAGES = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _canonical(re.split(r"[\s<>=!~;\[(@]", requirement.strip(), maxsplit=1)[0])


def _declared(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    names = {_requirement_name(r) for r in project.get("dependencies", [])}
    for extra in project.get("optional-dependencies", {}).values():
        names |= {_requirement_name(r) for r in extra}
    names.add(_canonical(project["name"]))
    return names


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_imported_third_party_module_is_declared(package: Path) -> None:
    declared = _declared(package / "pyproject.toml")
    distributions = packages_distributions()
    missing: dict[str, set[str]] = {}
    for source in sorted((package / "src").rglob("*.py")):
        for module in _imports(source):
            if module in sys.stdlib_module_names or module == "__future__":
                continue
            owners = {_canonical(d) for d in distributions.get(module, [])}
            if module == "gravity":  # the proto stubs ship inside gravity-core
                owners = {"gravity-core"}
            if not owners:
                # a module no installed distribution provides: an optional extra's import guarded at runtime
                continue
            if not owners & declared:
                missing.setdefault(f"{module} ({', '.join(sorted(owners))})", set()).add(
                    str(source.relative_to(REPO))
                )
    assert not missing, f"{package.name} imports modules it does not declare: " + "; ".join(
        f"{module} in {', '.join(sorted(files))}" for module, files in sorted(missing.items())
    )
