"""What the test_ship_*.py modules share: the renders of every functional combination of answers
and the helpers several kinds of shipped file need (settings as the generated code declares them,
GitHub's and the Compose specification's schemas, one path per distinct content, test tools).

Every combination is rendered once per session (in parallel, from a plain copy of the template);
each test_ship_*.py module validates one kind of shipped file offline. No Docker engine is needed.
The `renders` fixture (tests/conftest.py) calls `render_all` once per session.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from answer_space import FUNCTIONAL, name_of, product
from conftest import record_timing
from rendering import process_pool, render

# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Render:
    answers: dict[str, str]
    path: Path

    @property
    def has_http(self) -> bool:
        return self.answers["transport"] != "stdio"

    @property
    def has_stdio(self) -> bool:
        return self.answers["transport"] != "http"

    @property
    def prefix(self) -> str:
        return "MY_SERVER_"


def _render_job(job: tuple[str, str, dict[str, str]]) -> tuple[dict[str, str], str]:
    template, root, answers = job
    destination = Path(root) / name_of(answers)
    render(Path(template), destination, answers)
    return answers, str(destination)


def _combos() -> list[dict[str, str]]:
    """Every functional combination, plus the other Python versions and a Proprietary license."""
    defaults = {"license": "MIT", "python_version": "3.11"}
    combos = [{**defaults, **combo} for combo in product(FUNCTIONAL)]
    base = {"idp": "keycloak", "transport": "both", "trace_backend": "console", "rate_limit_storage": "memory"}
    combos += [{**defaults, **base, "python_version": version} for version in ("3.12", "3.13")]
    combos += [{**defaults, **base, "license": "Proprietary", "transport": "http"}]
    return combos


def render_all(template: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Render]:
    """Render every combination of `_combos` from `template`, in parallel."""
    root = tmp_path_factory.mktemp("ship-renders")
    combos = _combos()
    started = time.perf_counter()
    jobs = [(str(template), str(root), combo) for combo in combos]
    with process_pool(max(2, os.cpu_count() or 2)) as pool:
        done = list(pool.map(_render_job, jobs, chunksize=4))
    record_timing(f"ship files: {len(done)} renders in {time.perf_counter() - started:.1f} s")
    return [Render(answers, Path(path)) for answers, path in done]


def unique_files(paths: list[Path]) -> dict[str, Path]:
    """One path per distinct content (many renders share a file byte for byte)."""
    return {hashlib.sha256(path.read_bytes()).hexdigest(): path for path in paths}


def find_tool(name: str, hint: str) -> str:
    """An executable from this environment (the test dependency group) or PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is required for this test: {hint}", pytrace=False)
    return found


# --- settings, as the generated code declares them ------------------------------------------


@functools.cache
def settings_env(settings_py: Path, prefix: str) -> tuple[frozenset[str], frozenset[str]]:
    """(every environment variable Settings reads, those holding secrets) from settings.py, with the
    settings the identity provider's module adds (ProviderSettings in auth/providers/<idp>.py)."""
    sources = [settings_py, *sorted(settings_py.parent.glob("auth/providers/*.py"))]
    bodies = [
        re.split(r"^\S", body, maxsplit=1, flags=re.MULTILINE)[0]
        for source in sources
        for body in re.split(r"^class (?:Provider)?Settings\(.*\):$", source.read_text(), flags=re.MULTILINE)[1:]
    ]
    fields = [
        field
        for body in bodies
        for field in re.findall(r"^    (\w+): (.*?)(?=^    \w+: |^    @|\Z)", body, flags=re.MULTILINE | re.DOTALL)
    ]
    names: set[str] = set()
    secrets: set[str] = set()
    for field, declaration in fields:
        alias = re.search(r'validation_alias="(\w+)"', declaration)
        env = alias.group(1) if alias else f"{prefix}{field.upper()}"
        names.add(env)
        if "SecretStr" in declaration.split("=", 1)[0]:
            secrets.add(env)
    return frozenset(names), frozenset(secrets)


# --- JSON schemas vendored by check-jsonschema -------------------------------------------------


@functools.cache
def _vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema vendored by check-jsonschema (compose-spec, github-workflows, dependabot)."""
    try:
        import check_jsonschema.builtin_schemas as builtin
    except ImportError:
        pytest.fail("check-jsonschema is required (test dependency group)", pytrace=False)
    path = Path(builtin.__file__).parent / "vendor" / f"{name}.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def schema_errors(schema_name: str, document: Any) -> list[str]:
    import jsonschema

    schema = _vendored_schema(schema_name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]
