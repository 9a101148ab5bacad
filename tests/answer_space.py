"""The answer space of copier.yml: every question with `choices`, and which combinations copier asks.

Read from copier.yml itself. A question whose `when` renders false is not asked: copier gives it
its default and leaves it out of .copier-answers.yml, so a combination is possible only when each
skipped question holds its default. `when` and defaults are rendered with Jinja against the other
choices' answers and cast to bool as copier does; tests/test_render_matrix.py checks the result
against the answers file copier writes for every combination.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

COPIER_YML = Path(__file__).resolve().parent.parent / "copier.yml"

# The answers that change code, not only wording (license text, Python version numbers): the
# generated projects' own checks run over their full product (tests/test_generated.py --full-matrix).
FUNCTIONAL = ("idp", "transport", "trace_backend", "rate_limit_storage")
WORDING = ("license", "python_version")

Answers = dict[str, str]


class AnswerSpaceError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    name: str
    values: tuple[str, ...]
    default: str
    when: Any  # copier's `when`: a bool or a Jinja string; true when absent


def _choice_values(name: str, choices: Any) -> tuple[str, ...]:
    """Copier's forms: a list of values, a list of [label, value] pairs, or a label -> value mapping."""
    items = list(choices.values()) if isinstance(choices, Mapping) else list(choices)
    values = [item[1] if isinstance(item, list | tuple) else item for item in items]
    values = [value["value"] if isinstance(value, Mapping) else value for value in values]
    if not all(isinstance(value, str) for value in values):
        raise AnswerSpaceError(f"copier.yml: {name}'s choices {values!r} are not all strings; quote them")
    return tuple(values)


def read_questions(copier_yml: Path = COPIER_YML) -> dict[str, Question]:
    """The questions of `copier_yml` that have choices, in the file's order."""
    config = yaml.safe_load(copier_yml.read_text())
    questions: dict[str, Question] = {}
    for name, details in config.items():
        if name.startswith("_") or not isinstance(details, Mapping) or "choices" not in details:
            continue
        values = _choice_values(name, details["choices"])
        default = details.get("default", values[0])
        if not isinstance(default, str) or ("{{" not in default and default not in values):
            raise AnswerSpaceError(f"copier.yml: {name}'s default {default!r} is none of its choices {values}")
        questions[name] = Question(name, values, default, details.get("when", True))
    return questions


_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined)


@functools.cache
def _compiled(source: str) -> jinja2.Template:
    return _JINJA.from_string(source)


def _render(question: str, field: str, value: Any, answers: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return _compiled(value).render(answers)
    except jinja2.UndefinedError as error:
        raise AnswerSpaceError(
            f"copier.yml: {question}'s `{field}` uses an answer that is not a question with choices ({error}); "
            "tests/answer_space.py evaluates conditions over those only"
        ) from error


def cast_to_bool(value: Any) -> bool:
    """copier's reading of a rendered `when`: numbers, then YAML booleans and nulls, then truthiness."""
    try:
        return bool(float(value))
    except (TypeError, ValueError):
        pass
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"", "n", "no", "f", "false", "off", "~", "null", "none"}:
            return False
        if lowered in {"y", "yes", "t", "true", "on"}:
            return True
    return bool(value)


@dataclass(frozen=True)
class AnswerSpace:
    """The combinations of answers to `questions` that copier can be given."""

    questions: Mapping[str, Question]

    def choices(self) -> dict[str, tuple[str, ...]]:
        return {name: question.values for name, question in self.questions.items()}

    @functools.cached_property
    def defaults(self) -> Mapping[str, str]:
        """Each question's default (what --defaults answers, and what a skipped question holds)."""
        answers: Answers = {}
        for name, question in self.questions.items():  # a default may name an earlier answer
            answers[name] = str(_render(name, "default", question.default, answers))
        return answers

    def is_asked(self, name: str, answers: Mapping[str, str]) -> bool:
        """Whether copier asks `name` given the other answers (those not given take their defaults)."""
        question = self.questions[name]
        return cast_to_bool(_render(name, "when", question.when, {**self.defaults, **answers}))

    def asked(self, answers: Mapping[str, str]) -> Answers:
        """The answers a render really asks for (and records): the skipped questions left out."""
        return {
            name: value for name, value in answers.items() if name not in self.questions or self.is_asked(name, answers)
        }

    def is_possible(self, answers: Mapping[str, str]) -> bool:
        """Each question copier skips for these answers holds its default (copier gives it nothing else)."""
        kept = self.asked(answers)
        return all(value == self.defaults[name] for name, value in answers.items() if name not in kept)

    def product(self, names: tuple[str, ...] | None = None) -> list[Answers]:
        """Every possible combination of the given questions (all of them by default), in copier.yml's order."""
        space = self.choices()
        unknown = sorted(set(names or ()) - set(space))
        if unknown:
            raise AnswerSpaceError(f"no question with choices called {unknown} in copier.yml (have: {list(space)})")
        chosen = [name for name in space if names is None or name in names]
        combos = [dict(zip(chosen, values, strict=True)) for values in itertools.product(*(space[n] for n in chosen))]
        return [combo for combo in combos if self.is_possible(combo)]


# Questions whose answers meet in the generated code or its tests, so that the generated suites run
# every pair of their values together (tests/test_generated.py). The transport meets everything:
# it decides which modules a project has (stdio renders have no IdP, no HTTP) and how each is served.
# The trace backend meets the Python version and the rate-limit store (doctor, compose, fault tests
# probe both at once); the licence only writes text, so it pairs with the Python version alone. The
# IdP never meets the trace backend or the store: one module each, joined only by the transport.
# Every combination of the answers but the licence is still rendered and checked statically
# (tests/test_render_matrix.py, render_matrix()).
MEETING: frozenset[frozenset[str]] = frozenset(
    {
        *(frozenset({"transport", other}) for other in ("license", "python_version", "idp", "trace_backend")),
        frozenset({"transport", "rate_limit_storage"}),
        frozenset({"python_version", "trace_backend"}),
        frozenset({"trace_backend", "rate_limit_storage"}),
        frozenset({"license", "python_version"}),
    }
)


# Values that render another value's code but for the names they print: Grafana Tempo's preset is
# Jaeger's (the same OTLP exporter, traces only, the same tests). The covering set runs each such value
# once and pairs it as the value whose code it shares; tests/test_render_matrix.py checks, render by
# render, that the code is the same once the names are swapped.
SAME_CODE: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("trace_backend", "tempo"): ("jaeger", {"Grafana Tempo": "Jaeger", "tempo": "jaeger"}),
}


def paired_as(answers: Mapping[str, str]) -> Answers:
    """`answers` with every SAME_CODE value replaced by the value whose code it renders."""
    return {name: SAME_CODE.get((name, value), (value, {}))[0] for name, value in answers.items()}


def meet(first: str, second: str) -> bool:
    """Whether the generated suites must run each pair of values of these two questions together."""
    return frozenset({first, second}) in MEETING


@functools.cache
def template_space() -> AnswerSpace:
    """The answer space of this template's copier.yml."""
    return AnswerSpace(read_questions(COPIER_YML))


def choices() -> dict[str, tuple[str, ...]]:
    """Every question with choices and its values, in copier.yml's order."""
    return template_space().choices()


def defaults() -> Answers:
    return dict(template_space().defaults)


def asked(answers: Mapping[str, str]) -> Answers:
    return template_space().asked(answers)


def is_possible(answers: Mapping[str, str]) -> bool:
    return template_space().is_possible(answers)


def product(names: tuple[str, ...] | None = None) -> list[Answers]:
    return template_space().product(names)


# The answers that write only text of their own (the licence: LICENSE and pyproject.toml's license
# lines): the render matrix gives each combination of the others one of their values in turn.
TEXT_ONLY = ("license",)


def render_matrix() -> list[Answers]:
    """Every possible combination of the answers other than TEXT_ONLY's, each with one value of every
    TEXT_ONLY question in turn (in product order). Each licence is rendered with a third of the rest;
    the covering set (MEETING) pairs it with every Python version and transport."""
    space = choices()
    others = tuple(name for name in space if name not in TEXT_ONLY)
    combos = [
        {**{name: space[name][index % len(space[name])] for name in TEXT_ONLY}, **combo}
        for index, combo in enumerate(product(others))
    ]
    if not all(is_possible(combo) for combo in combos):
        raise AnswerSpaceError(f"copier.yml: a `when` now depends on {TEXT_ONLY}; they are not text only")
    return combos


def name_of(answers: Mapping[str, str]) -> str:
    """A folder name for a combination: its values in copier.yml's order, without dots."""
    return "-".join(answers[name] for name in template_space().questions if name in answers).replace(".", "")
