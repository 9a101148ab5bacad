"""Bad answers are refused by copier's validators before any file is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from limits import parse_many

from rendering import REPO, render

BAD_ANSWERS = [
    ("project_name", "9lives", "Start with a letter"),
    ("project_name", "my/server", "Start with a letter"),
    ("project_slug", "Bad_Slug", "lowercase letters"),
    ("project_slug", "double--hyphen", "lowercase letters"),
    ("package", "class-name", "Python identifier"),
    ("package", "fastmcp", "would shadow"),
    ("author_name", "  ", "author or team"),
    ("author_email", "nope", "email address"),
    ("author_email", "a@b", "email address"),
    ("default_rate_limit", "lots", "60/minute"),
    ("default_rate_limit", "10/fortnight", "60/minute"),
    ("default_rate_limit", "10 per", "60/minute"),
]


@pytest.mark.parametrize(("question", "answer", "message"), BAD_ANSWERS)
def test_bad_answer_is_refused_and_nothing_is_written(
    template: Path, tmp_path: Path, question: str, answer: str, message: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=rf"Validation error for question '{question}'") as error:
        render(template, destination, {question: answer})
    assert message in str(error.value)
    assert not destination.exists() or not any(destination.iterdir())


def test_good_non_default_answers_are_accepted(template: Path, tmp_path: Path) -> None:
    answers = {
        "project_name": "Orders MCP",
        "author_email": "team@corp.example.org",
        "default_rate_limit": "5 per 2 minutes; 1000/day",
    }
    project = render(template, tmp_path / "orders", answers)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert recorded["project_slug"] == "orders-mcp"
    assert recorded["package"] == "orders_mcp"
    assert (project / "src" / "orders_mcp" / "server.py").is_file()
    assert (
        'default_rate_limit: str = "5 per 2 minutes; 1000/day"' in (project / "src/orders_mcp/settings.py").read_text()
    )


def test_every_free_text_answer_can_differ_from_its_default(template: Path, tmp_path: Path) -> None:
    answers = {
        "project_name": "Ledger.Sync_2",
        "project_slug": "ledger",
        "package": "ledger_core",
        "description": "Ledger lookups for finance agents",
        "author_name": "Finance Platform",
        "author_email": "finance@ledger.example.co.uk",
        "default_rate_limit": "2/second|100 per hour",
    }
    project = render(template, tmp_path / "anything", {"transport": "http", "idp": "entra", **answers})
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {**answers, "transport": "http", "idp": "entra"}.items() <= recorded.items()
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "ledger"' in pyproject
    assert 'ledger = "ledger_core.cli:main"' in pyproject
    assert "Finance Platform" in pyproject and "finance@ledger.example.co.uk" in pyproject
    assert (project / "src" / "ledger_core" / "server.py").is_file()
    assert not (project / "src" / "ledger").exists()


LIMIT_SAMPLES = [
    "60/minute",
    "10 per second",
    "5/2 minutes",
    "100/hour; 1000/day",
    "1/second,2/minute|3/hour",
    "7 PER DAY",
    "3/months",
    "2 per 3 years",
    "lots",
    "10/fortnight",
    "10 per",
    "/minute",
    "ten per minute",
    "10/minute;",
    "-1/second",
]


def _copier_limit_pattern() -> re.Pattern[str]:
    validator = yaml.safe_load((REPO / "copier.yml").read_text())["default_rate_limit"]["validator"]
    pattern = re.search(r"regex_search\('(.+?)', ignorecase=True\)", validator)
    assert pattern is not None
    # Jinja unescapes string literals as Python does: "\\s" in copier.yml is the regex "\s".
    return re.compile(pattern.group(1).encode().decode("unicode-escape"), re.IGNORECASE)


@pytest.mark.parametrize("sample", LIMIT_SAMPLES)
def test_rate_limit_validator_agrees_with_the_limits_parser(sample: str) -> None:
    try:
        parse_many(sample)
        parsed = True
    except ValueError:
        parsed = False
    assert bool(_copier_limit_pattern().search(sample)) == parsed, sample
