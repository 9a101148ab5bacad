"""HTML forms on login and consent pages, read the way a browser submits them."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    # (name, value) of each named submit button, in page order: one name may carry several values.
    buttons: list[tuple[str, str]] = field(default_factory=list)

    def button(self, name: str) -> str:
        """The value the button called `name` submits."""
        return next(value for button, value in self.buttons if button == name)

    def names(self) -> set[str]:
        return set(self.fields) | {name for name, _ in self.buttons}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(attributes.get("action", ""), attributes.get("method", "get").lower()))
        elif tag in ("input", "button") and self.forms and attributes.get("name"):
            kind = attributes.get("type", "submit" if tag == "button" else "text").lower()
            if kind == "submit":
                self.forms[-1].buttons.append((attributes["name"], attributes.get("value", "")))
            else:
                self.forms[-1].fields[attributes["name"]] = attributes.get("value", "")


def forms_in(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def form_with(page: str, name: str) -> Form:
    """The page's form that has a field or button called `name`."""
    for form in forms_in(page):
        if name in form.names():
            return form
    raise AssertionError(f"no form with {name!r} on the page:\n{page[:3000]}")
