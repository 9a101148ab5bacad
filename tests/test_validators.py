"""Bad answers are refused by copier's validators before any file is written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from limits import parse_many

from rendering import REPO, render

# Every branch of every validator in copier.yml, with the words its message starts with.
BAD_ANSWERS = [
    ("project_name", "9lives", "Start with a letter"),
    ("project_name", "my/server", "Use letters, digits"),
    ("project_name", "a" * 65, "Use 64 characters at most"),
    ("project_slug", "Bad_Slug", "Start with a lowercase letter"),
    ("project_slug", "double--hyphen", "Use a-z, 0-9 and single hyphens"),
    ("project_slug", "trailing-", "Use a-z, 0-9 and single hyphens"),
    ("package", "1st", "Start with a lowercase letter or _"),
    ("package", "class-name", "Use a-z, 0-9 and _"),
    ("package", "fastmcp", "Shadows a library"),
    ("package", "opentelemetry", "Shadows a library"),
    ("author_name", "  ", "Give a name"),
    ("author_email", "nope", "An email like"),
    ("author_email", "a@b", "An email like"),
    ("default_rate_limit", "lots", 'E.g. "60/minute'),
    ("default_rate_limit", "10/fortnight", 'E.g. "60/minute'),
    ("default_rate_limit", "10 per", 'E.g. "60/minute'),
]

# What the prompt shows, and how: a validator's message on one toolbar line that is cut at the
# terminal's width and never wrapped (prompt_toolkit's ValidationToolbar: one row, a second line
# is never shown), after copier's prefix; a help text after copier's prompt mark (2 columns and a
# space) on its first line; a choice after questionary's pointer.
COLUMNS = 80
PROMPT_MARK = 3  # "🎤 ": a wide character and a space
POINTER = 5  # "   » "


def _shown(question: str, message: str) -> str:
    return f"Validation error for question '{question}': {message}"


@pytest.mark.parametrize(("question", "answer", "message"), BAD_ANSWERS)
def test_bad_answer_is_refused_and_nothing_is_written(
    template: Path, tmp_path: Path, question: str, answer: str, message: str
) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=rf"Validation error for question '{question}'") as error:
        render(template, destination, {question: answer})
    assert str(error.value).startswith(_shown(question, message))
    assert not destination.exists() or not any(destination.iterdir())


def _questions() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((REPO / "copier.yml").read_text())
    return {
        name: details
        for name, details in config.items()
        if not name.startswith("_") and details.get("when") is not False  # asked: not a derived value
    }


def test_every_validator_message_fits_one_80_column_line(template: Path, tmp_path: Path) -> None:
    """Each validator branch (one per `{% if %}`/`{% elif %}`), as copier shows it for a bad answer."""
    shown: dict[str, set[str]] = {}
    for number, (question, answer, _) in enumerate(BAD_ANSWERS):
        with pytest.raises(ValueError, match="Validation error") as error:
            render(template, tmp_path / str(number), {question: answer})
        shown.setdefault(question, set()).add(str(error.value))
    with_validator = {name: details["validator"] for name, details in _questions().items() if "validator" in details}
    assert set(shown) == set(with_validator), "BAD_ANSWERS must cover every question with a validator"
    for question, validator in with_validator.items():
        branches = len(re.findall(r"{%-?\s*(?:if|elif)\b", validator))
        assert len(shown[question]) == branches, f"{question}: {sorted(shown[question])} for {branches} branches"
    too_wide = [line for lines in shown.values() for line in lines if "\n" in line or len(line) > COLUMNS]
    assert not too_wide, f"wider than {COLUMNS} columns or on two lines: {too_wide}"


def test_every_help_text_and_choice_fits_80_columns() -> None:
    too_wide = []
    for name, details in _questions().items():
        help_text = str(details.get("help", ""))
        assert help_text.isascii() and "{{" not in help_text, f"{name}: plain ASCII help, so a character is a column"
        first, *rest = help_text.splitlines() or [""]
        too_wide += [line for line in [first] if PROMPT_MARK + len(line) > COLUMNS]
        too_wide += [line for line in rest if len(line) > COLUMNS]
        choices = details.get("choices", [])
        labels = list(choices) if isinstance(choices, dict) else [str(choice) for choice in choices]
        too_wide += [label for label in labels if POINTER + len(label) > COLUMNS]
    assert not too_wide, f"wider than {COLUMNS} columns: {too_wide}"


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
        'default_rate_limit: str = Field(default="5 per 2 minutes; 1000/day"'
        in (project / "src/orders_mcp/settings.py").read_text()
    )


def test_a_name_that_would_shadow_a_library_gets_a_package_that_does_not(template: Path, tmp_path: Path) -> None:
    """The derived default is valid too: `redis` as a project name must not make copier refuse its own default."""
    project = render(template, tmp_path / "redis", {"project_name": "redis"})
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (recorded["project_slug"], recorded["package"]) == ("redis", "redis_server")
    assert "shadowed_packages" not in recorded
    assert (project / "src" / "redis_server" / "server.py").is_file()


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
