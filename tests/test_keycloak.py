"""The Keycloak answer against a real Keycloak: the shipped realm, the generated server, real tokens.

One Keycloak for the module (`kc.sh start-dev` on 127.0.0.1, the rendered realm imported, its
audience pointed at this test's server) starts in a background thread while the project renders
and syncs. The generated server then runs as a subprocess in idp mode against it, and real MCP
clients (fastmcp's `Client`, in the project's own environment) call it with tokens Keycloak issued:
client credentials, authorization code + PKCE through anonymous Dynamic Client Registration, and a
token minted without the server's audience.

Then the attacks on tenancy: what an anonymous registrant (through Keycloak's own endpoint or RFC
7591) may create, protocol mappers that would set the tenant, a user editing their own tenant, and
a token without a tenant reaching the server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import keep_venv, python_for, record_timing, uv_environment
from peers.forms import forms_in
from peers.keycloak import (
    KEYCLOAK_VERSION,
    Keycloak,
    KeycloakError,
    cache_dir,
    distribution,
    initial_state,
    post_form,
    send_json,
    start,
)
from peers.machine import free_port
from peers.mcp_client import McpClient
from peers.oauth_client import McpAuthorization
from peers.oauth_client import jwt_claims as claims  # unverified: the server does the verifying
from peers.processes import stop
from rendering import render

REALM_FILE = "deploy/keycloak/mcp-realm.json"
SHIPPED_RESOURCE = "http://127.0.0.1:8000/mcp"  # the server's default resource URL, as the realm ships it
PREFIX = "MY_SERVER_"
USER = "alice"  # the realm's test user: tenant acme, realm role mcp-operator


# --- the stack -------------------------------------------------------------------------------


def realm_for(realm: dict[str, Any], resource: str) -> dict[str, Any]:
    """The shipped realm with its audience moved to this test's server (nothing else changes)."""
    text = json.dumps(realm)
    assert text.count(json.dumps(SHIPPED_RESOURCE)) == 1, "the realm names the server's resource URL once"
    rewritten: dict[str, Any] = json.loads(text.replace(json.dumps(SHIPPED_RESOURCE), json.dumps(resource)))
    return rewritten


def provider_options(project: Path) -> list[str]:
    """The provider settings the project's compose file starts Keycloak with (`--spi-…`)."""
    command = yaml.safe_load((project / "compose.yaml").read_text())["services"]["keycloak"]["command"]
    options = [argument for argument in command if argument.startswith("--spi-")]
    assert options, command
    return options


class KeycloakStart(threading.Thread):
    """Prepares (first time only) and starts Keycloak, then waits for the realm: the slow part."""

    def __init__(self, realm: dict[str, Any], home: Path, port: int, options: list[str]) -> None:
        super().__init__(name="keycloak-start", daemon=True)
        self.realm, self.home, self.port, self.options = realm, home, port, options
        self.keycloak: Keycloak | None = None
        self.error: BaseException | None = None
        self.prepared: list[str] = []  # what this run had to make first: download, build, database

    def run(self) -> None:
        try:
            cache = cache_dir()
            began = time.perf_counter()
            if not (cache / f"keycloak-{KEYCLOAK_VERSION}" / "bin" / "kc.sh").is_file():
                distribution()
                self.prepared.append(f"downloaded and unpacked in {time.perf_counter() - began:.1f} s")
            began = time.perf_counter()
            if not (cache / f"state-{KEYCLOAK_VERSION}" / "admin.json").is_file():
                initial_state(options=self.options)
                self.prepared.append(f"initial database (first start) in {time.perf_counter() - began:.1f} s")
            self.keycloak = start([self.realm], self.home, self.port, self.options)
            self.keycloak.wait_ready(self.realm["realm"])
        except BaseException as error:  # reported by the fixture, in the test's thread
            self.error = error

    def result(self) -> Keycloak:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.keycloak is not None
        return self.keycloak


@dataclass
class Stack:
    keycloak: Keycloak
    project: Path
    base_url: str
    client: McpClient
    log: Path  # the server's
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def issuer(self) -> str:
        return self.keycloak.issuer("mcp")

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def mcp(self, token: str, *calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        """tools/list, then each tool call, with a real MCP client holding `token`."""
        return self.client.session(self.resource, token, calls)


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-4000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the server was not healthy within {timeout:.0f} s:\n{log.read_text()[-4000:]}", pytrace=False)


@pytest.fixture(scope="module")
def stack(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("keycloak")
    began = time.perf_counter()
    project = render(template, root / "my-server", {"idp": "keycloak", "transport": "http"})
    keep_venv(project, "keycloak", python_for("3.11"))
    server_port, keycloak_port = free_port(), free_port()
    base_url, issuer = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{keycloak_port}/realms/mcp"
    realm = realm_for(json.loads((project / REALM_FILE).read_text()), f"{base_url}/mcp")
    starting = KeycloakStart(realm, root / "keycloak-home", keycloak_port, provider_options(project))
    starting.start()

    # Everything else starts while Keycloak does: the server only asks Keycloak for keys on the first token.
    env = uv_environment(python_for("3.11"))
    synced = subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, capture_output=True, text=True)
    sync_seconds = time.perf_counter() - began
    server: subprocess.Popen[bytes] | None = None
    client: McpClient | None = None
    keycloak: Keycloak | None = None
    try:
        assert synced.returncode == 0, synced.stderr[-4000:]
        server_env = {
            **env,
            f"{PREFIX}TRANSPORT": "http",
            f"{PREFIX}HOST": "127.0.0.1",
            f"{PREFIX}PORT": str(server_port),
            f"{PREFIX}AUTH_MODE": "idp",
            f"{PREFIX}IDP_ISSUER": issuer,
            f"{PREFIX}USER_ID_HASH_KEY": secrets.token_urlsafe(32),
            "FASTMCP_CHECK_FOR_UPDATES": "off",
            "FASTMCP_SHOW_SERVER_BANNER": "false",
        }
        log = root / "server.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [str(project / ".venv" / "bin" / "my-server"), "serve"],
                cwd=project,
                env=server_env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        client = McpClient(project / ".venv" / "bin" / "python")

        keycloak = starting.result()
        assert keycloak.issuer("mcp") == issuer
        ready = time.perf_counter() - keycloak.started_at
        for step in starting.prepared:
            record_timing(f"keycloak {KEYCLOAK_VERSION}: {step}")
        rebuilt = " (including Keycloak's build)" if "QuarkusAugmentor" in keycloak.log_tail(10**7) else ""
        record_timing(
            f"keycloak {KEYCLOAK_VERSION}: started with the realm in {ready:.1f} s{rebuilt}, RSS "
            f"{keycloak.rss_bytes() / 2**20:.0f} MB; the project rendered and synced meanwhile in {sync_seconds:.1f} s"
        )
        # Credentials are never the realm's dev placeholders: Keycloak generates the client secret,
        # the test user gets a random password.
        found = {
            "mcp-service": keycloak.new_client_secret("mcp", "mcp-service"),
            "password": secrets.token_urlsafe(16),
        }
        keycloak.set_password("mcp", USER, found["password"])
        _wait_healthy(server, f"{base_url}/healthz", log)
        yield Stack(keycloak, project, base_url, client, log, found)
    finally:
        if client is not None:
            client.close()
        if server is not None:
            stop(server, timeout=20)
        if keycloak is None and starting.keycloak is not None:
            keycloak = starting.keycloak
        if keycloak is not None:
            keycloak.stop()


# --- tokens ----------------------------------------------------------------------------------


def audiences(token: str) -> list[str]:
    aud = claims(token).get("aud")
    return [aud] if isinstance(aud, str) else list(aud or [])


def client_credentials(stack: Stack, client_id: str, secret: str, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return str(post_form(stack.token_endpoint, form, basic=(client_id, secret))["access_token"])


def unauthorized_challenge(stack: Stack, token: str | None) -> tuple[int, str]:
    """POST tools/list with `token` (or none); the status and WWW-Authenticate header."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(stack.resource, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("WWW-Authenticate", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("WWW-Authenticate", "")


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@dataclass
class UserLogin:
    client_id: str
    registration: dict[str, Any]
    scopes_supported: list[str]
    token: str
    consented: bool


def sign_in(
    stack: Stack, openid: dict[str, Any], client_id: str, redirect_uri: str, scopes: list[str]
) -> tuple[str, bool]:
    """The test user's access token through authorization code + PKCE (S256) with the resource
    indicator, on Keycloak's own login and consent pages; and whether consent was asked."""
    flow = McpAuthorization(
        resource_url=stack.resource,
        user=USER,
        scope=" ".join(["openid", *scopes]),
        redirect_uri=redirect_uri,
        credentials={"username": USER, "password": stack.secrets["password"]},
    )
    code, verifier = flow.authorize(openid, client_id)
    assert flow.callback.get("iss", stack.issuer) == stack.issuer
    # The realm's Consent Required policy for anonymous registrations shows a page after the login.
    consented = any("accept" in form.names() for page in flow.pages for form in forms_in(page.text()))
    return flow.exchange(openid, client_id, code, verifier).access_token, consented


@pytest.fixture(scope="module")
def alice(stack: Stack) -> UserLogin:
    """The MCP authorization flow as a client on this machine runs it, with Keycloak's own pages."""
    # 1. The server's 401 names its RFC 9728 metadata, which names the authorization server.
    status, challenge = unauthorized_challenge(stack, None)
    assert status == 401
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge)
    assert metadata_url, challenge
    metadata = get_json(metadata_url.group(1))
    assert metadata["resource"] == stack.resource
    assert metadata["authorization_servers"] == [stack.issuer]
    openid = get_json(f"{metadata['authorization_servers'][0]}/.well-known/openid-configuration")
    assert "S256" in openid["code_challenge_methods_supported"]

    # 2. Anonymous Dynamic Client Registration, asking for the scopes the server advertises.
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    scopes = list(metadata["scopes_supported"])
    request = urllib.request.Request(
        openid["registration_endpoint"],
        data=json.dumps(
            {
                "client_name": "keycloak end-to-end test",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "scope": " ".join(scopes),
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            registration: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"registration refused: {error.code} {error.read().decode()}") from error
    client_id = str(registration["client_id"])

    # 3. Authorization code + PKCE (S256) with the resource indicator, through the login and consent pages.
    token, consented = sign_in(stack, openid, client_id, redirect_uri, scopes)
    return UserLogin(client_id, registration, scopes, token, consented)


# --- the tests -------------------------------------------------------------------------------


def test_client_credentials_token_sees_and_calls_what_its_scopes_allow(stack: Stack) -> None:
    # The service client may ask for `admin`, but only holders of the mcp-operator role get it.
    token = client_credentials(stack, "mcp-service", stack.secrets["mcp-service"], scope="admin")
    assert stack.resource in audiences(token)
    assert set(claims(token)["scope"].split()) == {"data:read"}

    answer = stack.mcp(token, ("search_notes", {"query": "rate limits"}), ("server_info", {}), ("whoami", {}))
    assert answer["tools"] == ["digest_notes", "search_notes", "whoami"]
    calls = answer["calls"]
    assert not calls["search_notes"]["is_error"], calls["search_notes"]
    assert "Rate limits" in calls["search_notes"]["text"]
    denial = calls["server_info"]
    assert denial["is_error"]
    assert "requires scope admin" in denial["text"] and "data:read" in denial["text"], denial["text"]
    me = calls["whoami"]["structured"]
    assert me["client_id"] == "mcp-service" and me["tenant"] == "acme" and me["scopes"] == ["data:read"]


def test_the_realm_secret_placeholder_is_not_accepted_once_rotated(stack: Stack) -> None:
    with pytest.raises(KeycloakError, match=r"unauthorized_client|invalid_client"):
        client_credentials(stack, "mcp-service", "mcp-service-dev-secret")


def test_authorization_code_with_pkce_through_anonymous_dcr(stack: Stack, alice: UserLogin) -> None:
    assert {"data:read", "admin"} <= set(alice.scopes_supported)
    assert alice.registration["token_endpoint_auth_method"] == "none"
    assert alice.consented, "anonymously registered clients must ask the user's consent"
    registered = stack.keycloak.admin("GET", f"/mcp/clients/{stack.keycloak.client_uuid('mcp', alice.client_id)}")
    assert registered["publicClient"] and not registered["serviceAccountsEnabled"]
    assert not (registered["implicitFlowEnabled"] or registered["directAccessGrantsEnabled"])
    assert registered["attributes"]["pkce.code.challenge.method"] == "S256"
    token = alice.token
    assert stack.resource in audiences(token), "the realm's audience mapper reaches DCR clients"
    assert {"data:read", "admin"} <= set(claims(token)["scope"].split())
    assert claims(token)["azp"] == alice.client_id

    answer = stack.mcp(token, ("search_notes", {"query": "on-call"}), ("server_info", {}))
    assert answer["tools"] == ["digest_notes", "search_notes", "server_info", "whoami"]
    assert not answer["calls"]["search_notes"]["is_error"], answer["calls"]["search_notes"]
    info = answer["calls"]["server_info"]
    assert not info["is_error"], info
    assert info["structured"]["uptime_seconds"] >= 0


def test_realm_roles_and_tenant_reach_whoami(stack: Stack, alice: UserLogin) -> None:
    me = stack.mcp(alice.token, ("whoami", {}))["calls"]["whoami"]
    assert not me["is_error"], me
    identity = me["structured"]
    assert identity["tenant"] == "acme"
    assert "mcp-operator" in identity["roles"]
    assert identity["client_id"] == alice.client_id
    assert identity["subject"] == claims(alice.token)["sub"]


@pytest.mark.parametrize("redirect_uri", ["https://attacker.example/callback", "myapp://callback"])
def test_dcr_refuses_redirects_off_this_machine(stack: Stack, redirect_uri: str) -> None:
    status, answer = register(stack, RFC7591, {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"})
    # Keycloak's error code for any refused registration.
    assert (status, answer["error"]) == (403, "insufficient_scope"), answer


def service_client(stack: Stack, client_id: str, scopes: list[str], **representation: Any) -> str:
    """An admin-created confidential client with a service account; returns its new secret."""
    client = {
        "clientId": client_id,
        "protocol": "openid-connect",
        "publicClient": False,
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "defaultClientScopes": scopes,
        **representation,
    }
    stack.keycloak.admin("POST", "/mcp/clients", client)
    return stack.keycloak.new_client_secret("mcp", client_id)


def test_token_without_the_servers_audience_is_rejected_with_a_challenge(stack: Stack) -> None:
    # A client of the same realm that lacks the scope carrying the audience mapper.
    keycloak = stack.keycloak
    secret = service_client(stack, "no-audience", ["data:read"], optionalClientScopes=[])
    uuid = keycloak.client_uuid("mcp", "no-audience")
    for scope in keycloak.admin("GET", f"/mcp/clients/{uuid}/default-client-scopes"):
        if scope["name"] == "basic":
            keycloak.admin("DELETE", f"/mcp/clients/{uuid}/default-client-scopes/{scope['id']}")
    token = client_credentials(stack, "no-audience", secret)
    assert stack.resource not in audiences(token), claims(token)
    assert claims(token)["iss"] == stack.issuer and "data:read" in claims(token)["scope"].split()

    status, challenge = unauthorized_challenge(stack, token)
    assert status == 401
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{stack.base_url}/.well-known/oauth-protected-resource/mcp"' in challenge, challenge


# --- tenancy: what a caller cannot choose ----------------------------------------------------

KEYCLOAK_OWN = "default"  # Keycloak's own client representation: it names the client id, secret, mappers
CLOSED_PROVIDERS = (KEYCLOAK_OWN, "saml2-entity-descriptor")  # turned off by the compose file's options
RFC7591 = "openid-connect"
LOOPBACK_REDIRECT = "http://127.0.0.1:8976/callback"
# Puts the user's first name, which users edit themselves, in the tenant claim.
TENANT_MAPPER = {
    "name": "tenant from the first name",
    "protocol": "openid-connect",
    "protocolMapper": "oidc-usermodel-property-mapper",
    "config": {"user.attribute": "firstName", "claim.name": "tenant", "access.token.claim": "true"},
}


def register(stack: Stack, provider: str, metadata: dict[str, Any]) -> tuple[int, Any]:
    """Anonymous client registration through `provider` (no token at all)."""
    return send_json("POST", f"{stack.issuer}/clients-registrations/{provider}", metadata)


def public_client(client_id: str, **representation: Any) -> dict[str, Any]:
    """Keycloak's own representation of a public client redirecting to this machine."""
    return {"clientId": client_id, "publicClient": True, "redirectUris": [LOOPBACK_REDIRECT], **representation}


def client_exists(stack: Stack, client_id: str) -> bool:
    return bool(stack.keycloak.admin("GET", f"/mcp/clients?clientId={urllib.parse.quote(client_id)}"))


@pytest.mark.parametrize("provider", CLOSED_PROVIDERS)
def test_keycloaks_own_registration_endpoints_are_closed(stack: Stack, provider: str) -> None:
    # The attack: client id `acme`, a secret of the caller's choosing and a service account, then a
    # client-credentials token for data:read that names no tenant.
    chosen = {"publicClient": False, "secret": "chosen-by-the-caller", "serviceAccountsEnabled": True}
    status, answer = register(stack, provider, public_client("acme", standardFlowEnabled=False, **chosen))
    assert (status, answer) == (404, {"error": "Client registration provider not found"})
    assert not client_exists(stack, "acme")
    with pytest.raises(KeycloakError, match=r"HTTP 401 .*invalid_client"):
        client_credentials(stack, "acme", "chosen-by-the-caller", scope="data:read")


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_rfc7591_registration_gives_no_confidential_client(stack: Stack, auth_method: str) -> None:
    metadata = {
        "redirect_uris": [LOOPBACK_REDIRECT],
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": auth_method,
        "scope": "data:read",
    }
    status, answer = register(stack, RFC7591, metadata)
    assert (status, answer.get("error_description")) == (403, "invalid_client_metadata"), answer


def test_rfc7591_registration_gives_no_client_credentials_grant(stack: Stack) -> None:
    metadata = {"redirect_uris": [LOOPBACK_REDIRECT], "grant_types": ["client_credentials"], "scope": "data:read"}
    status, created = register(stack, RFC7591, {**metadata, "token_endpoint_auth_method": "none"})
    assert status == 201, created
    assert "client_secret" not in created
    form = {"grant_type": "client_credentials", "client_id": created["client_id"], "scope": "data:read"}
    with pytest.raises(KeycloakError, match=r"HTTP 401 .*Public client not allowed to retrieve service account"):
        post_form(stack.token_endpoint, form)


def test_rfc7591_registration_gives_authorization_code_clients_only(stack: Stack) -> None:
    metadata = {"redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "none"}
    asked = ["authorization_code", "password", "implicit"]
    status, created = register(stack, RFC7591, {**metadata, "grant_types": asked})
    assert status == 201, created
    assert created["grant_types"] == ["authorization_code"]
    device = {**metadata, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}
    status, answer = register(stack, RFC7591, device)
    assert (status, answer) == (400, {"error": "invalid_request", "error_description": "Request not allowed"})


def test_a_registrant_cannot_attach_a_protocol_mapper(stack: Stack) -> None:
    status, answer = register(stack, KEYCLOAK_OWN, public_client("tenant-mapper", protocolMappers=[TENANT_MAPPER]))
    assert status == 404, answer
    assert not client_exists(stack, "tenant-mapper")

    # RFC 7591 metadata has no mappers, neither at registration nor in an update with the
    # registration access token.
    metadata = {"redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "none"}
    status, answer = register(stack, RFC7591, {**metadata, "protocolMappers": [TENANT_MAPPER]})
    assert status == 400 and 'Unrecognized field "protocolMappers"' in answer["error"], answer
    status, created = register(stack, RFC7591, metadata)
    assert status == 201, created
    update = {key: value for key, value in created.items() if key != "registration_access_token"}
    status, answer = send_json(
        "PUT",
        created["registration_client_uri"],
        {**update, "protocolMappers": [TENANT_MAPPER]},
        token=created["registration_access_token"],
    )
    assert status == 400 and 'Unrecognized field "protocolMappers"' in answer["error"], answer
    (client,) = stack.keycloak.admin("GET", f"/mcp/clients?clientId={created['client_id']}")
    assert not client.get("protocolMappers")


def test_the_realm_allows_registrants_no_protocol_mapper_types(stack: Stack) -> None:
    # For a Keycloak that serves its own registration endpoint after all (started without the
    # compose file's options): the realm's policies refuse mappers there too.
    kind = "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy"
    components = stack.keycloak.admin("GET", f"/mcp/components?type={kind}")
    policies = [policy for policy in components if policy["providerId"] == "allowed-protocol-mappers"]
    assert sorted(policy["subType"] for policy in policies) == ["anonymous", "authenticated"]
    assert all(not policy["config"].get("allowed-protocol-mapper-types") for policy in policies), policies


def test_a_user_cannot_change_their_own_tenant(stack: Stack) -> None:
    # The shipped realm gives the account console no client scopes, so its tokens cannot call the
    # account API at all; give it those of a working console, so the refusal below is the tenant's.
    keycloak = stack.keycloak
    console = keycloak.client_uuid("mcp", "account-console")
    for scope in keycloak.admin("GET", "/mcp/client-scopes"):
        if scope["name"] in ("basic", "roles"):
            keycloak.admin("PUT", f"/mcp/clients/{console}/default-client-scopes/{scope['id']}")
    openid = get_json(f"{stack.issuer}/.well-known/openid-configuration")
    token, _ = sign_in(stack, openid, "account-console", f"{stack.issuer}/account/", [])
    account = f"{stack.issuer}/account/"
    status, me = send_json("GET", account, token=token)
    assert status == 200, me

    status, answer = send_json("POST", account, {**me, "attributes": {"tenant": ["globex"]}}, token=token)
    assert status == 400, answer
    assert (answer["field"], answer["errorMessage"]) == ("tenant", "error-user-attribute-read-only")
    assert send_json("POST", account, me, token=token)[0] == 204, "the same update without the tenant is accepted"
    (user,) = keycloak.admin("GET", f"/mcp/users?exact=true&username={USER}")
    assert user["attributes"]["tenant"] == ["acme"]


def test_a_token_without_a_tenant_is_refused_by_the_server(stack: Stack) -> None:
    # Should a client be registered all the same (here by the admin): its service account has no tenant.
    token = client_credentials(stack, "tenantless", service_client(stack, "tenantless", ["basic", "data:read"]))
    assert "tenant" not in claims(token)
    assert stack.resource in audiences(token) and "data:read" in claims(token)["scope"].split()

    status, challenge = unauthorized_challenge(stack, token)
    assert status == 401
    assert 'error="invalid_token"' in challenge, challenge
    reason = f"no 'tenant' claim names its tenant ({PREFIX}TENANT_FALLBACK=none)"
    assert f"Bearer token rejected for client tenantless: {reason}" in stack.log.read_text()


def test_keycloak_runs_within_its_memory_cap(stack: Stack) -> None:
    # -Xmx512m caps the heap; metaspace, code cache and threads come on top.
    rss = stack.keycloak.rss_bytes()
    record_timing(f"keycloak {KEYCLOAK_VERSION}: RSS after the flows {rss / 2**20:.0f} MB (heap capped at 512 MB)")
    assert rss < 1200 * 2**20
    assert os.path.realpath(stack.keycloak.home / "lib") == str(distribution() / "lib")
