"""compose.yaml, for every functional combination of answers: the Compose specification's JSON
schema, the server wired to its backends on loopback only, and the Keycloak realm matching the
server and compose.yaml (issuer, audience, scopes, clients).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from answer_space import name_of
from shipped import Render, schema_errors, settings_env

# --- compose.yaml -----------------------------------------------------------------------------


def test_compose_files_follow_the_compose_specification(renders: list[Render]) -> None:
    failures = {}
    for r in renders:
        compose = r.path / "compose.yaml"
        if compose.is_file():
            errors = schema_errors("compose-spec", yaml.safe_load(compose.read_text()))
            if errors:
                failures[name_of(r.answers)] = errors[:5]
    assert not failures, failures
    assert sum((r.path / "compose.yaml").is_file() for r in renders) > 50


def test_compose_wires_the_server_to_its_backends_on_loopback_only(renders: list[Render]) -> None:
    for r in renders:
        compose_file = r.path / "compose.yaml"
        if not compose_file.is_file():
            continue
        compose = yaml.safe_load(compose_file.read_text())
        services: dict[str, Any] = compose["services"]
        for name, service in services.items():
            for port in service.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} must bind loopback only"
            image = service.get("image", "")
            assert re.search(r":\d", image) or "build" in service, f"{name}: pin the image version ({image})"
            for volume in service.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("./"):
                    assert (r.path / source).exists(), f"{name}: {source} is not in the project"
            for dependency in service.get("depends_on", {}):
                assert dependency in services
        expected = set()
        if r.has_http:
            expected.add("server")
        if r.has_http and r.answers["idp"] == "keycloak":
            expected.add("keycloak")
        if r.answers["rate_limit_storage"] == "redis":
            expected.add("redis")
        expected |= {"jaeger": {"jaeger"}, "tempo": {"lgtm"}}.get(r.answers["trace_backend"], set())
        assert set(services) == expected, name_of(r.answers)
        if not r.has_http:
            continue
        server = services["server"]
        env = {key: str(value) for key, value in server["environment"].items()}
        settings, _ = settings_env(r.path / "src/my_server/settings.py", r.prefix)
        unknown = [key for key in env if not key.startswith("OTEL_") and key not in settings]
        assert not unknown, f"not settings of the server: {unknown}"
        assert env[f"{r.prefix}AUTH_MODE"] == "idp" and env[f"{r.prefix}HOST"] == "0.0.0.0"
        assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
        if r.answers["rate_limit_storage"] == "redis":
            assert env[f"{r.prefix}RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:")
        if r.answers["trace_backend"] in ("jaeger", "tempo"):
            backend = "jaeger" if r.answers["trace_backend"] == "jaeger" else "lgtm"
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{backend}:4318"
            assert "127.0.0.1:4318:4318" in services[backend]["ports"]
        for secret in ("LANGFUSE_SECRET_KEY", "LANGFUSE_PUBLIC_KEY", f"{r.prefix}USER_ID_HASH_KEY"):
            assert secret not in env, "secrets come from .env, never from compose.yaml"


def test_keycloak_realm_matches_the_server_and_compose(renders: list[Render]) -> None:
    for r in renders:
        realm_file = r.path / "deploy/keycloak/mcp-realm.json"
        if not realm_file.is_file():
            continue
        realm = json.loads(realm_file.read_text())
        compose = yaml.safe_load((r.path / "compose.yaml").read_text())["services"]
        server_env = compose["server"]["environment"]
        keycloak_env = compose["keycloak"]["environment"]
        assert server_env[f"{r.prefix}IDP_ISSUER"] == f"{keycloak_env['KC_HOSTNAME']}/realms/{realm['realm']}"
        resource = f"{server_env[f'{r.prefix}PUBLIC_URL']}/mcp"
        mappers = [m for scope in realm["clientScopes"] for m in scope.get("protocolMappers", [])]
        audiences = [
            m["config"]["included.custom.audience"] for m in mappers if m["protocolMapper"] == "oidc-audience-mapper"
        ]
        assert audiences == [resource], "tokens must carry the server's resource URL in aud"
        tenant = [m for m in mappers if m["name"] == "tenant"]
        assert tenant and tenant[0]["config"]["claim.name"] == "tenant"
        # The scopes the tools ask for exist, and end up in the token's `scope`.
        tools = "".join(p.read_text() for p in (r.path / "src/my_server/tools").glob("*.py"))
        wanted = set(re.findall(r'require_scopes\("([^"]+)"\)', tools))
        scopes = {scope["name"]: scope for scope in realm["clientScopes"]}
        assert wanted and wanted <= set(scopes)
        assert all(scopes[name]["attributes"]["include.in.token.scope"] == "true" for name in wanted)
        clients = {client["clientId"]: client for client in realm["clients"]}
        machine = [c for c in clients.values() if c.get("serviceAccountsEnabled") and not c.get("publicClient")]
        desktop = [c for c in clients.values() if c.get("publicClient") and c.get("standardFlowEnabled")]
        assert machine and desktop
        assert all(c["attributes"]["pkce.code.challenge.method"] == "S256" for c in desktop)
        for client in clients.values():
            assert "mcp-resource" in client["defaultClientScopes"]
            assert wanted <= set(client["defaultClientScopes"]) | set(client["optionalClientScopes"])
