"""The generated server against a real OpenID provider, over the full MCP OAuth 2.1 flow.

One node `oidc-provider` per IdP answer, shaped like that IdP (issuer form, endpoints, claims), and
one rendered project per answer, run as real `serve` subprocesses on 127.0.0.1:

- auth0, entra: the default OAuth proxy flow. The MCP client registers at the server (DCR), the
  user signs in at the provider through FastMCP's consent page, the server's own token is used;
  scopes come from Auth0 `permissions`, Entra `scp` + `roles`; tenants from `org_id` and `tid`.
- oidc: the default remote flow (DCR and sign-in at the provider, its token used directly); and the
  proxy flow on two replicas sharing one real Redis: registered and authorized on replica 1, code
  exchanged and tools called on replica 2.

Every shape also takes a client-credentials token straight from the provider and refuses a token
minted for another resource. A missing scope is a 403 step-up challenge; the OAuth proxy takes
loopback redirect URIs only, keeps registrations in Redis with a TTL and serves its consent page
with CSP, nosniff and no-store.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import keep_venv, python_for, record_timing, uv_environment
from peers.machine import free_port
from peers.oauth_client import Browser, McpAuthorization, Response, challenge_parameters, jwt_claims
from peers.oidc import OpenIdProvider, PeerError, ensure_installed
from peers.processes import stop, unhealthy
from rendering import render

PREFIX = "MY_SERVER_"
TENANT = "6f2a4c1e-3b7d-4e5f-9a8b-0c1d2e3f4a5b"  # Entra directory (tenant) id
ENTRA_APP = "3d9b8f2e-1a4c-4b6d-8e0f-2a3b4c5d6e7f"  # Entra application (client) id of the MCP server
OTHER_RESOURCE = "http://127.0.0.1:9/other/mcp"
PROXY_CLIENT, PROXY_SECRET = "mcp-proxy", "proxy-secret-" + secrets.token_hex(8)
MACHINE, MACHINE_SECRET = "m2m", "m2m-secret-" + secrets.token_hex(8)
SIGNING_KEY = secrets.token_urlsafe(48)
HASH_KEY = secrets.token_urlsafe(32)  # idp mode hashes user ids with a key or does not start
STORAGE_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # a Fernet key
READY_SECONDS = 120  # servers and providers start together on a loaded 2-core machine

ANSWERS = {
    "auth0": {"idp": "auth0", "transport": "http", "rate_limit_storage": "memory", "trace_backend": "none"},
    "entra": {"idp": "entra", "transport": "http", "rate_limit_storage": "memory", "trace_backend": "none"},
    "oidc": {"idp": "oidc", "transport": "http", "rate_limit_storage": "redis", "trace_backend": "none"},
}

# Runs in a generated project's venv: real fastmcp Client calls, one interpreter for a batch.
MCP_TOOL_CALLS = Path(__file__).parent / "peers" / "mcp_tool_calls.py"


@dataclass
class Server:
    project: Path
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(self.project / ".venv" / "bin" / "my-server"), "serve"],
                cwd=self.project,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        problem = unhealthy(self.process, f"{self.base}/healthz", deadline - time.monotonic())
        if problem:
            raise PeerError(f"server on {self.port}: {problem}:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@dataclass
class Stack:
    providers: dict[str, OpenIdProvider]
    servers: dict[str, Server]
    projects: dict[str, Path]
    redis_port: int
    logs: list[Path] = field(default_factory=list)

    def call(self, project: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Tool calls through fastmcp.Client in `project`'s venv; one result per call."""
        python = self.projects[project] / ".venv" / "bin" / "python"
        run = subprocess.run(
            [str(python), "-P", str(MCP_TOOL_CALLS)],
            input=json.dumps(calls),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        results: list[dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
        return results


def _server_env(settings: dict[str, str], home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith((PREFIX, "VIRTUAL_ENV"))}
    env.update(
        {
            "FASTMCP_CHECK_FOR_UPDATES": "off",
            "FASTMCP_SHOW_SERVER_BANNER": "false",
            "FASTMCP_HOME": str(home),
            f"{PREFIX}TRANSPORT": "http",
            f"{PREFIX}HOST": "127.0.0.1",
            f"{PREFIX}AUTH_MODE": "idp",
            f"{PREFIX}LOG_LEVEL": "DEBUG",
            f"{PREFIX}DEFAULT_RATE_LIMIT": "1000/minute",
            f"{PREFIX}USER_ID_HASH_KEY": HASH_KEY,
        }
    )
    env.update({f"{PREFIX}{name}": value for name, value in settings.items()})
    return env


def _proxy_client(base: str, auth_method: str, client_id: str = PROXY_CLIENT) -> dict[str, Any]:
    """The one client the OAuth proxy is registered as at the IdP."""
    return {
        "client_id": client_id,
        "client_secret": PROXY_SECRET,
        "redirect_uris": [f"{base}/auth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method,
    }


MACHINE_CLIENT = {
    "client_id": MACHINE,
    "client_secret": MACHINE_SECRET,
    "grant_types": ["client_credentials"],
    "redirect_uris": [],
    "response_types": [],
}


def _provider_configs(ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    auth0_base = f"http://127.0.0.1:{ports['auth0']}"
    entra_base = f"http://127.0.0.1:{ports['entra']}"
    replicas_base = f"http://127.0.0.1:{ports['replica1']}"
    api = f"api://{ENTRA_APP}"
    return {
        # Auth0: issuer with a trailing slash, `audience` picks the API, RBAC `permissions`, `org_id`.
        "auth0": {
            "shape": "auth0",
            "port": ports["op-auth0"],
            "issuer": f"http://127.0.0.1:{ports['op-auth0']}/",
            "routes": {"authorization": "/authorize", "token": "/oauth/token", "jwks": "/.well-known/jwks.json"},
            "clients": [_proxy_client(auth0_base, "client_secret_post"), MACHINE_CLIENT],
            "resources": {
                f"{auth0_base}/mcp": {"scope": "data:read admin"},
                OTHER_RESOURCE: {"scope": "data:read admin"},
            },
            "users": {"alice": {"permissions": ["data:read"], "org_id": "org_acme"}},
            "machines": {MACHINE: {"permissions": ["data:read", "admin"], "org_id": "org_robots"}},
        },
        # Entra v2: issuer .../<tenant>/v2.0, aud = the app's client id, `scp` short names, `roles`, `tid`.
        "entra": {
            "shape": "entra",
            "port": ports["op-entra"],
            "issuer": f"http://127.0.0.1:{ports['op-entra']}/{TENANT}/v2.0",
            "routes": {
                "authorization": f"/{TENANT}/oauth2/v2.0/authorize",
                "token": f"/{TENANT}/oauth2/v2.0/token",
                "jwks": f"/{TENANT}/discovery/v2.0/keys",
            },
            "clients": [_proxy_client(entra_base, "client_secret_basic", ENTRA_APP), MACHINE_CLIENT],
            "resources": {
                api: {"audience": ENTRA_APP, "scope": f"{api}/data:read {api}/admin"},
                "api://other-app": {"audience": "other-app", "scope": "api://other-app/data:read"},
            },
            "users": {"alice": {"tid": TENANT}},
            "machines": {MACHINE: {"roles": ["data:read", "admin"], "tid": TENANT}},
        },
        # Generic OpenID provider: discovery, DCR, `scope`, a `tenant` claim.
        "oidc": {
            "shape": "generic",
            "port": ports["op-oidc"],
            "issuer": f"http://127.0.0.1:{ports['op-oidc']}",
            "clients": [_proxy_client(replicas_base, "client_secret_basic"), MACHINE_CLIENT],
            "resources": {
                f"http://127.0.0.1:{ports['oidc']}/mcp": {"scope": "data:read admin"},
                f"{replicas_base}/mcp": {"scope": "data:read admin"},
                OTHER_RESOURCE: {"scope": "data:read admin"},
            },
            "users": {"alice": {"tenant": "acme"}},
            "machines": {MACHINE: {"tenant": "robots"}},
        },
    }


def _server_settings(ports: dict[str, int], issuers: dict[str, str], secret_file: Path) -> dict[str, dict[str, str]]:
    proxy = {"IDP_CLIENT_ID": PROXY_CLIENT, "IDP_CLIENT_SECRET": PROXY_SECRET, "JWT_SIGNING_KEY": SIGNING_KEY}
    replica = {
        "IDP_ISSUER": issuers["oidc"],
        "OAUTH_FLOW": "proxy",
        "IDP_CLIENT_ID": PROXY_CLIENT,
        "IDP_CLIENT_SECRET_FILE": str(secret_file),  # the Docker/Kubernetes secret-file form
        "JWT_SIGNING_KEY": SIGNING_KEY,
        "STORAGE_ENCRYPTION_KEY": STORAGE_KEY,
        "RATE_LIMIT_STORAGE_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "PUBLIC_URL": f"http://127.0.0.1:{ports['replica1']}",  # one public URL for every replica
    }
    return {
        "auth0": {"PORT": str(ports["auth0"]), "IDP_ISSUER": issuers["auth0"], **proxy},
        "entra": {"PORT": str(ports["entra"]), "IDP_ISSUER": issuers["entra"], **proxy, "IDP_CLIENT_ID": ENTRA_APP},
        "oidc": {
            "PORT": str(ports["oidc"]),
            "IDP_ISSUER": issuers["oidc"],
            "RATE_LIMIT_STORAGE_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        },
        "replica1": {"PORT": str(ports["replica1"]), **replica},
        "replica2": {"PORT": str(ports["replica2"]), **replica},
    }


def _sync(project: Path) -> None:
    env = uv_environment(python_for("3.11"))
    run = subprocess.run(
        ["uv", "sync", "--quiet", "--no-dev"], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, f"uv sync in {project}:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"


def _start_redis(port: int, log: Path) -> subprocess.Popen[bytes]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is required: apt-get install redis-server", pytrace=False)
    with log.open("wb") as out:
        return subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def stack(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Providers, Redis and five servers, started together; rendered projects synced meanwhile."""
    started = time.perf_counter()
    root = tmp_path_factory.mktemp("idp-flows")
    names = ["op-auth0", "op-entra", "op-oidc", "auth0", "entra", "oidc", "replica1", "replica2", "redis"]
    ports = {name: free_port() for name in names}
    projects = {idp: render(template, root / idp, answers) for idp, answers in ANSWERS.items()}
    for idp, project in projects.items():
        keep_venv(project, f"idp-flows-{idp}", python_for("3.11"))
    node = ensure_installed()
    providers: dict[str, OpenIdProvider] = {}
    servers: dict[str, Server] = {}
    redis = _start_redis(ports["redis"], root / "redis.log")
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            syncing = [pool.submit(_sync, project) for project in projects.values()]
            for idp, config in _provider_configs(ports).items():
                providers[idp] = OpenIdProvider(node, config, root / f"op-{idp}.log")
            for job in syncing:
                job.result()
        secret_file = root / "idp-client-secret"
        secret_file.write_text(PROXY_SECRET + "\n")
        issuers = {idp: provider.issuer for idp, provider in providers.items()}
        for name, settings in _server_settings(ports, issuers, secret_file).items():
            project = projects["oidc" if name.startswith("replica") else name]
            home = root / f"home-{name}"
            servers[name] = Server(project, ports[name], _server_env(settings, home), root / f"server-{name}.log")
        deadline = time.monotonic() + READY_SECONDS
        for provider in providers.values():
            provider.wait_ready(deadline)  # the oidc servers read the provider's discovery document at start
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready(deadline)
        took = time.perf_counter() - started
        record_timing(f"idp flows: 3 projects synced; 3 providers, Redis and 5 servers up: {took:.1f} s")
        yield Stack(providers, servers, projects, ports["redis"], [root / f"server-{name}.log" for name in servers])
    finally:
        for server in servers.values():
            server.stop()
        for provider in providers.values():
            provider.stop()
        stop(redis)


def _post_mcp(url: str, token: str, body: dict[str, Any] | None = None) -> Response:
    return Browser().request(
        "POST",
        url,
        body=body or {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {token}",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )


def _call_server_info(url: str, token: str) -> Response:
    return _post_mcp(url, token, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "server_info"}})


def _registration_ttl(redis_port: int, client_id: str) -> int:
    """Seconds until Redis forgets the OAuth proxy's registration of `client_id` (-1: never)."""
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.fail("redis-cli is required: apt-get install redis-tools", pytrace=False)

    def redis(*arguments: str) -> str:
        return subprocess.run(
            [cli, "-p", str(redis_port), *arguments], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    [key] = redis("--scan", "--pattern", f"*mcp-oauth-proxy-clients::{client_id}").split()
    return int(redis("TTL", key))


def _by_tool(results: list[dict[str, Any]], calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{call['who']}:{call['tool']}": result for call, result in zip(calls, results, strict=True)}


# What each IdP's claims must grant: the user holds data:read only, the machine also admin.
EXPECTED = {
    "auth0": {"user_tenant": "org_acme", "machine_tenant": "org_robots"},
    "entra": {"user_tenant": TENANT, "machine_tenant": TENANT},
    "oidc": {"user_tenant": "acme", "machine_tenant": "robots"},
}


@pytest.mark.parametrize("idp", ["auth0", "entra", "oidc"])
def test_mcp_oauth_flow_and_machine_tokens(stack: Stack, idp: str) -> None:
    server = stack.servers[idp]
    provider = stack.providers[idp]
    resource = f"{server.base}/mcp"
    flow = McpAuthorization(resource_url=resource, user="alice", scope="data:read")
    metadata = flow.discover()
    assert set(metadata["scopes_supported_by_resource"]) == {"admin", "data:read"}
    proxied = idp in ("auth0", "entra")
    if proxied:
        # DCR, authorize and token endpoints are this server's own (FastMCP's OAuth proxy).
        assert metadata["registration_endpoint"].startswith(server.base)
        assert metadata["token_endpoint"].startswith(server.base)
    else:
        assert metadata["issuer"].rstrip("/") == provider.issuer.rstrip("/")
    if proxied:
        for redirect_uri in ("https://evil.example/cb", "myapp://cb"):
            refused = flow.registration(metadata, redirect_uri)
            assert (refused.status, refused.json()["error"]) == (400, "invalid_redirect_uri"), redirect_uri
    client_id = flow.register(metadata)
    code, verifier = flow.authorize(metadata, client_id)
    if proxied:
        [consent] = [page for page in flow.pages if "/consent" in page.url]  # FastMCP's consent page was shown
        assert "frame-ancestors 'none'" in consent.headers["content-security-policy"]
        assert consent.headers["x-content-type-options"] == "nosniff"
        assert consent.headers["cache-control"] == "no-store"
    user_token = flow.exchange(metadata, client_id, code, verifier).access_token
    header = json.loads(base64.urlsafe_b64decode(user_token.split(".")[0] + "=="))
    assert header["alg"] == ("HS256" if proxied else "RS256"), "proxy mode hands out the server's own token"

    machine_params = {"resource": f"api://{ENTRA_APP}"} if idp == "entra" else {"resource": resource}
    if idp == "oidc":
        machine_params["scope"] = "data:read admin"
    machine_token = provider.client_credentials(MACHINE, MACHINE_SECRET, **machine_params)
    machine_claims = jwt_claims(machine_token)
    assert "openid" not in str(machine_claims.get("scope", "")), "machine tokens hold no openid scope"
    if idp == "auth0":
        assert not machine_claims.get("scope"), "admin must come from Auth0 `permissions` alone"
    if idp == "entra":
        assert "scp" not in machine_claims, "app-only Entra tokens carry `roles`, no `scp`"
    other = {"resource": "api://other-app"} if idp == "entra" else {"resource": OTHER_RESOURCE}
    foreign_token = provider.client_credentials(MACHINE, MACHINE_SECRET, **other)

    calls: list[dict[str, Any]] = [
        {"who": "user", "token": user_token, "tool": "whoami"},
        {"who": "user", "token": user_token, "tool": "search_notes", "arguments": {"query": "a"}},
        {"who": "user", "token": user_token, "tool": "server_info"},
        {"who": "machine", "token": machine_token, "tool": "whoami"},
        {"who": "machine", "token": machine_token, "tool": "server_info"},
    ]
    results = _by_tool(stack.call(idp, [{**call, "url": resource} for call in calls]), calls)

    user = results["user:whoami"]
    assert not user["is_error"], user
    assert user["data"]["tenant"] == EXPECTED[idp]["user_tenant"]
    assert user["data"]["scopes"] == ["data:read"]
    assert "server_info" not in user["tools"]
    notes = results["user:search_notes"]
    # data:read reaches the tool; the sample data answers only tenants it holds notes for.
    assert not notes["is_error"] or notes["text"].startswith("No notes for tenant"), notes
    assert results["user:server_info"]["is_error"], "data:read alone must not reach the admin tool"
    assert "requires scope admin" in results["user:server_info"]["text"], results["user:server_info"]

    machine = results["machine:whoami"]
    assert not machine["is_error"], machine
    assert machine["data"]["tenant"] == EXPECTED[idp]["machine_tenant"]
    assert set(machine["data"]["scopes"]) == {"data:read", "admin"}
    assert not results["machine:server_info"]["is_error"], results["machine:server_info"]

    assert _post_mcp(resource, foreign_token).status == 401, "a token for another resource must be refused"

    challenge = _call_server_info(resource, user_token)
    assert challenge.status == 403, "a missing scope is a step-up challenge"
    assert challenge_parameters(challenge) == {
        "error": "insufficient_scope",
        "scope": "admin",
        "resource_metadata": f"{server.base}/.well-known/oauth-protected-resource/mcp",
    }
    assert "requires scope admin" in challenge.json()["error"]["message"]


def test_a_client_steps_up_to_the_scope_a_tool_asks_for(stack: Stack) -> None:
    """The user signed in with data:read; the 403 names admin; signing in again for both works."""
    resource = f"{stack.servers['oidc'].base}/mcp"
    first = McpAuthorization(resource_url=resource, user="alice", scope="data:read").sign_in()
    challenge = challenge_parameters(_call_server_info(resource, first.access_token))
    assert challenge["error"] == "insufficient_scope"
    stepped_up = f"data:read {challenge['scope']}"  # what the client held, plus what it was asked for
    second = McpAuthorization(resource_url=resource, user="alice", scope=stepped_up).sign_in()
    answer = _call_server_info(resource, second.access_token)
    assert answer.status == 200, answer.body[:500]
    assert b'"isError":false' in answer.body.replace(b" ", b"")


def test_proxy_state_is_shared_by_replicas_through_redis(stack: Stack) -> None:
    first, second = stack.servers["replica1"], stack.servers["replica2"]
    resource = f"{first.base}/mcp"  # the public URL both replicas serve
    flow = McpAuthorization(resource_url=resource, user="alice", scope="data:read admin")
    metadata = flow.discover()
    client_id = flow.register(metadata)  # stored in Redis by replica 1
    ttl = _registration_ttl(stack.redis_port, client_id)
    assert 29 * 86400 < ttl <= 30 * 86400, f"a registration expires after 30 days, not {ttl} s"
    code, verifier = flow.authorize(metadata, client_id)  # sign-in completes on replica 1's callback
    on_second = {**metadata, "token_endpoint": metadata["token_endpoint"].replace(first.base, second.base)}
    token = flow.exchange(on_second, client_id, code, verifier).access_token  # code redeemed on replica 2

    calls = [
        {"who": "user", "token": token, "tool": "whoami", "url": f"{second.base}/mcp"},
        {"who": "user", "token": token, "tool": "server_info", "url": f"{second.base}/mcp"},
    ]
    results = _by_tool(stack.call("oidc", calls), calls)
    assert results["user:whoami"]["data"]["tenant"] == "acme", results["user:whoami"]
    assert not results["user:server_info"]["is_error"], results["user:server_info"]


def test_proxy_secrets_never_reach_the_logs(stack: Stack) -> None:
    for log in stack.logs:
        text = log.read_text(errors="replace")
        for secret in (PROXY_SECRET, SIGNING_KEY, STORAGE_KEY, MACHINE_SECRET, HASH_KEY):
            assert secret not in text, f"a secret is in {log.name}"


def test_a_missing_proxy_secret_stops_the_server_with_its_name(stack: Stack) -> None:
    env = _server_env(
        {"IDP_ISSUER": stack.providers["auth0"].issuer, "IDP_CLIENT_ID": PROXY_CLIENT}, Path("/nonexistent")
    )
    run = subprocess.run(
        [str(stack.projects["auth0"] / ".venv" / "bin" / "my-server"), "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert f"{PREFIX}IDP_CLIENT_SECRET" in run.stderr
    assert f"{PREFIX}JWT_SIGNING_KEY" in run.stderr
