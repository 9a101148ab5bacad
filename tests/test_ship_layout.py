"""Which files a generated project ships, for every functional combination of answers, and the
parser that reads the settings the generated code declares (the compose and Kubernetes checks use it).
"""

from __future__ import annotations

from answer_space import name_of
from shipped import Render, settings_env

# --- settings, as the generated code declares them ------------------------------------------


def test_settings_parser_reads_fields_and_secrets(renders: list[Render]) -> None:
    langfuse = next(r for r in renders if r.answers["trace_backend"] == "langfuse" and r.has_http)
    names, secrets = settings_env(langfuse.path / "src/my_server/settings.py", langfuse.prefix)
    assert {"MY_SERVER_HOST", "MY_SERVER_AUTH_MODE", "MY_SERVER_RATE_LIMIT_STORAGE_URL", "LANGFUSE_SECRET_KEY"} <= names
    assert {"MY_SERVER_USER_ID_HASH_KEY", "LANGFUSE_SECRET_KEY"} <= secrets
    assert "MY_SERVER_HOST" not in secrets


# --- which files exist ------------------------------------------------------------------------


def _expects_compose(r: Render) -> bool:
    return r.has_http or r.answers["trace_backend"] in ("jaeger", "tempo") or r.answers["rate_limit_storage"] == "redis"


def test_every_render_ships_exactly_its_files(renders: list[Render]) -> None:
    always = [
        "Dockerfile",
        ".dockerignore",
        ".github/workflows/ci.yml",
        ".github/workflows/template-update.yml",
        ".github/dependabot.yml",
        "fastmcp.json",
        "fastmcp_server.py",
        ".vscode/mcp.json",
    ]
    wrong = []
    for r in renders:
        expected = {
            **{name: True for name in always},
            "compose.yaml": _expects_compose(r),
            "deploy/kubernetes/deployment.yaml": r.has_http,
            "deploy/keycloak/mcp-realm.json": r.has_http and r.answers["idp"] == "keycloak",
            "README.md": True,
            "docs/README.md": True,
            "docs/authentication.md": r.has_http,
            "docs/identity-provider.md": r.has_http,
            "src/my_server/auth/dev_tokens.py": r.has_http,
            "src/my_server/auth/providers/entra_proxy.py": r.has_http and r.answers["idp"] == "entra",
        }
        actual = {name: (r.path / name).is_file() for name in expected}
        if actual != expected:
            wrong.append((name_of(r.answers), {k: v for k, v in actual.items() if v != expected[k]}))
        if not r.has_http and (r.path / "deploy").exists():
            wrong.append((name_of(r.answers), {"deploy/ (empty)": True}))
    assert not wrong, wrong[:10]
