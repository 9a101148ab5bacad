"""The README and docs/ of every render: relative links and their anchors resolve, the identity
provider page is the chosen provider's, and the client configurations are valid JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from answer_space import name_of
from shipped import Render, unique_files

# --- README and docs/ ---------------------------------------------------------------------------

# The page title of docs/identity-provider.md for each identity provider.
IDP_PAGE_TITLES = {
    "keycloak": "# Identity provider: Keycloak\n",
    "auth0": "# Identity provider: Auth0\n",
    "entra": "# Identity provider: Microsoft Entra ID\n",
    "oidc": "# Identity provider: your OpenID provider\n",
}


def markdown_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (code blocks skipped)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    headings = re.findall(r"^#{1,6} (.+)$", prose, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def relative_links(text: str) -> list[str]:
    """The targets of a Markdown file's links that are not URLs (code spans and blocks skipped)."""
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE))
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", prose) if not re.match(r"[a-z]+:", target)]


def test_markdown_anchors_and_links_read_headings_and_skip_code() -> None:
    text = "# Tenants: only the `IdP` names them\n```bash\n# not a heading [x](gone.md)\n```\n"
    text += "[a](b.md#c) [u](https://x.org) `[d](e.md)`\n"
    assert markdown_anchors(text) == {"tenants-only-the-idp-names-them"}
    assert relative_links(text) == ["b.md#c"]


def _link_resolves(page: Path, target: str) -> bool:
    """A relative link of `page` names an existing file or folder and, after `#`, one of its headings."""
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    if not destination.exists():
        return False
    return not anchor or (destination.is_file() and anchor in markdown_anchors(destination.read_text()))


def test_readme_and_docs_links_resolve(renders: list[Render]) -> None:
    broken = []
    for r in renders:
        for page in [r.path / "README.md", *sorted((r.path / "docs").glob("*.md"))]:
            broken += [
                (name_of(r.answers), page.relative_to(r.path).as_posix(), target)
                for target in relative_links(page.read_text())
                if not _link_resolves(page, target)
            ]
        if r.has_http and not (r.path / "docs/identity-provider.md").read_text().startswith(
            IDP_PAGE_TITLES[r.answers["idp"]]
        ):
            broken.append((name_of(r.answers), "docs/identity-provider.md", "another identity provider's page"))
    assert not broken, broken[:20]


def test_docs_client_configurations_are_valid_json(renders: list[Render]) -> None:
    for path in unique_files([r.path / "docs/clients.md" for r in renders]).values():
        text = path.read_text()
        blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
        configs = [json.loads(block) for block in blocks if '"mcpServers"' in block or '"servers"' in block]
        assert configs, f"{path}: no client configuration"
        for config in configs:
            servers = config.get("mcpServers") or config["servers"]
            assert all("command" in s or "url" in s for s in servers.values())
