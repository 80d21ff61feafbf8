"""Method, dataset and recipe names are written once, in gravity_core.names (issue 16: names in the contract).

Every string constant in ``packages/*/src`` (generated stubs aside) equal to a method, dataset, trainer recipe or
baseline facet name, or starting like an ablation name (``gravity-no-``), is a failure outside the mapping
module: code imports the constant instead. Docstrings are prose and do not count; comments are not in the AST.

Not checked: the four GRAVITY facet names ("category", "summary", "values", "personality") and the pair recipe
"full" are ordinary words that other code uses for other things (a TRAIT file's ``personality`` column, a
profiling stage); the code that means the facet uses the constant all the same.
"""

from __future__ import annotations

import ast
import textwrap

from gravity_testing import REPO

from gravity_core import names

MAPPING = REPO / "packages" / "core" / "src" / "gravity_core" / "names.py"
GENERATED = REPO / "packages" / "core" / "src" / "gravity"

# The project's own name is not the method's: file -> names allowed there, with the reason.
PROJECT_NAME = "the project's name, not the method"
ALLOWED: dict[str, dict[str, str]] = {
    "packages/core/src/gravity_core/cli/main.py": {names.GRAVITY: f"the command's name: {PROJECT_NAME}"},
    "packages/core/src/gravity_core/config.py": {
        names.GRAVITY: f"Kafka client id and group prefix: {PROJECT_NAME}"
    },
    "packages/core/src/gravity_core/paths.py": {names.GRAVITY: f"the cache directory: {PROJECT_NAME}"},
    "packages/stack/src/gravity_stack/llm_server.py": {names.GRAVITY: f"the models' owner: {PROJECT_NAME}"},
    "packages/trainer/src/gravity_trainer/card.py": {names.GRAVITY: f"a model-card tag: {PROJECT_NAME}"},
    "packages/pairgen/src/gravity_pairgen/card.py": {names.GRAVITY: f"a dataset-card tag: {PROJECT_NAME}"},
    "packages/generator/src/gravity_generator/web/openai_protocol.py": {
        names.GRAVITY: f"the OpenAI API's extra request and response object and the models' owner: {PROJECT_NAME}"
    },
}


def watched_names() -> set[str]:
    recipes = {s.recipe for s in names.METHODS.values() if s.recipe}
    baseline_facets = set(names.FACETS) - set(names.GRAVITY_FACETS)
    return {*names.METHODS, *names.DATASETS, *recipes, *baseline_facets}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def name_literals(source: str, watched: set[str]) -> list[tuple[int, str]]:
    """(line, value) of every string constant (f-string parts included) that writes a watched name."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            value = node.value
            if value in watched or value.startswith(names.ABLATION_PREFIX):
                hits.append((node.lineno, value))
    return sorted(hits)


def test_the_scanner_finds_names_in_code_but_not_in_docstrings() -> None:
    source = textwrap.dedent(
        '''
        """Serves "user-sft" and gravity."""
        REQUIRED = ("user-sft", "pref-align")

        def f(x: str) -> str:
            """Returns "gravity"."""
            # "lamp" in a comment
            return f"gravity-no-{x}" if x else {"recipe": "gravity-dpo"}["recipe"]
        '''
    )
    assert name_literals(source, watched_names()) == [
        (3, "pref-align"),
        (3, "user-sft"),
        (8, "gravity-dpo"),
        (8, "gravity-no-"),
    ]


def test_no_method_dataset_or_facet_name_is_written_outside_the_mapping() -> None:
    watched = watched_names()
    sources = sorted((REPO / "packages").glob("*/src/**/*.py"))
    assert MAPPING in sources and len(sources) > 50
    found = []
    for path in sources:
        if path == MAPPING or GENERATED in path.parents:
            continue
        rel = path.relative_to(REPO).as_posix()
        allowed = ALLOWED.get(rel, {})
        for line, value in name_literals(path.read_text(encoding="utf-8"), watched):
            if value not in allowed:
                found.append(f"{rel}:{line}: {value!r}")
    assert not found, (
        "names written outside gravity_core.names (import its constant, e.g. names.USER_SFT; if it is the "
        "project's name rather than the method, add the file to ALLOWED with the reason):\n"
        + "\n".join(found)
    )
