"""The MCP authorization flow (OAuth 2.1 + PKCE, RFC 9728, RFC 8414, RFC 7591, RFC 8707), headless.

What an MCP client does, step by step, with the standard library: read the 401 challenge, fetch the
protected-resource and authorization-server metadata, register, authorize with PKCE and `resource`,
get through every HTML page on the way (FastMCP's consent page, the provider's login and consent
forms: Keycloak's, oidc-provider's) like a user who fills in the login form and clicks "allow",
and exchange the code.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from peers.forms import Form, forms_in

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the flow stops at this redirect


class FlowError(RuntimeError):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# The buttons a user clicks to let the client in: FastMCP's consent page, Keycloak's, oidc-provider's.
APPROVE = ("approve", "allow", "accept")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Browsers send Secure cookies to http://127.0.0.1 too (Keycloak marks its login-session cookies so)."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        loopback = urllib.parse.urlsplit(request.full_url).hostname in ("127.0.0.1", "localhost")
        return loopback or super().return_ok_secure(cookie, request)


class Browser:
    """Cookies on, redirects followed by hand (the last one goes to the client's redirect URI)."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar(_LoopbackIsSecure())
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())

    def request(
        self,
        method: str,
        url: str,
        *,
        form: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data: bytes | None = None
        all_headers = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with self.opener.open(request, timeout=30) as reply:
                return Response(reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read(), url)
        except urllib.error.HTTPError as error:
            return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read(), url)


@dataclass
class Tokens:
    access_token: str
    scope: str | None
    client_id: str


@dataclass
class McpAuthorization:
    """One MCP client signing one user in to one MCP server.

    `credentials` are what the user types into the login form (by default oidc-provider's dev
    login, which takes any password); `callback` is the query the redirect URI was reached with.
    """

    resource_url: str
    user: str
    scope: str
    redirect_uri: str = REDIRECT_URI
    credentials: dict[str, str] = field(default_factory=dict)
    browser: Browser = field(default_factory=Browser)
    trail: list[str] = field(default_factory=list)
    pages: list[Response] = field(default_factory=list)  # the HTML forms on the way (consent, login)
    callback: dict[str, str] = field(default_factory=dict)

    def discover(self) -> dict[str, Any]:
        """401 challenge -> RFC 9728 metadata -> authorization server metadata."""
        challenge = self.browser.request(
            "POST",
            self.resource_url,
            body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        if challenge.status != 401:
            raise FlowError(f"expected a 401 challenge, got {challenge.status}")
        match = re.search(r'resource_metadata="([^"]+)"', challenge.headers.get("www-authenticate", ""))
        if match is None:
            raise FlowError(f"no resource_metadata in {challenge.headers.get('www-authenticate')!r}")
        resource = self.browser.request("GET", match.group(1)).json()
        if resource["resource"].rstrip("/") != self.resource_url.rstrip("/"):
            raise FlowError(f"metadata names {resource['resource']}, not {self.resource_url}")
        issuer = resource["authorization_servers"][0].rstrip("/")
        parts = urllib.parse.urlsplit(issuer)
        candidates = [
            f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}",
            f"{issuer}/.well-known/openid-configuration",
        ]
        for url in candidates:
            reply = self.browser.request("GET", url)
            if reply.status == 200:
                metadata: dict[str, Any] = reply.json()
                metadata["scopes_supported_by_resource"] = resource.get("scopes_supported", [])
                return metadata
        raise FlowError(f"no authorization server metadata at {candidates}")

    def registration(self, metadata: dict[str, Any], redirect_uri: str | None = None) -> Response:
        """The answer to a dynamic client registration (RFC 7591) of a public client."""
        return self.browser.request(
            "POST",
            metadata["registration_endpoint"],
            body={
                "client_name": "peers-test",
                "redirect_uris": [redirect_uri or self.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "scope": self.scope,
            },
        )

    def register(self, metadata: dict[str, Any]) -> str:
        reply = self.registration(metadata)
        if reply.status not in (200, 201):
            raise FlowError(f"registration refused: {reply.status} {reply.body[:500]!r}")
        client_id: str = reply.json()["client_id"]
        return client_id

    def authorize(self, metadata: dict[str, Any], client_id: str) -> tuple[str, str]:
        """Authorization code and PKCE verifier, after every page on the way."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        state = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource_url,
        }
        url = f"{metadata['authorization_endpoint']}?{urllib.parse.urlencode(query)}"
        reply = self.browser.request("GET", url)
        for _ in range(20):
            self.trail.append(f"{reply.status} {reply.url.split('?')[0]}")
            if reply.status in (301, 302, 303, 307):
                location = urllib.parse.urljoin(reply.url, reply.headers["location"])
                if location.startswith(self.redirect_uri):
                    params = self.callback = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
                    if "code" not in params:
                        raise FlowError(f"authorization failed: {params}")
                    if params.get("state") != state:
                        raise FlowError("state mismatch")
                    return params["code"], verifier
                reply = self.browser.request("GET", location)
            elif reply.status == 200 and b"<form" in reply.body:
                self.pages.append(reply)
                reply = self._submit(reply)
            else:
                raise FlowError(f"stuck at {reply.status} {reply.url}: {reply.body[:800]!r}")
        raise FlowError(f"too many steps: {self.trail}")

    def _submit(self, page: Response) -> Response:
        """Fill in the page's login form, or click its approve button (else the first form's first button)."""
        credentials = self.credentials or {"login": self.user, "password": "any"}
        form = _form_to_submit(forms_in(page.text()), credentials)
        values = dict(form.fields)
        if credentials.keys() & values.keys():
            values.update(credentials)
        if form.buttons:
            approve = (button for button in form.buttons if button[0] in APPROVE or button[1] in APPROVE)
            name, value = next(approve, form.buttons[0])
            values[name] = value
        action = urllib.parse.urljoin(page.url, form.action or page.url)
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(action))
        return self.browser.request(form.method.upper(), action, form=values, headers={"Origin": origin})

    def exchange(self, metadata: dict[str, Any], client_id: str, code: str, verifier: str) -> Tokens:
        reply = self.browser.request(
            "POST",
            metadata["token_endpoint"],
            form={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": self.resource_url,
            },
        )
        if reply.status != 200:
            raise FlowError(f"token exchange refused: {reply.status} {reply.body[:500]!r}")
        data = reply.json()
        return Tokens(data["access_token"], data.get("scope"), client_id)

    def sign_in(self) -> Tokens:
        metadata = self.discover()
        client_id = self.register(metadata)
        code, verifier = self.authorize(metadata, client_id)
        return self.exchange(metadata, client_id, code, verifier)


def _form_to_submit(forms: list[Form], credentials: dict[str, str]) -> Form:
    """The login form (it asks for a credential), else the form with an approve button, else the first."""
    login = [form for form in forms if credentials.keys() & form.fields.keys()]
    approve = [form for form in forms if any(name in APPROVE or value in APPROVE for name, value in form.buttons)]
    candidates = login or approve or forms
    if not candidates:
        raise FlowError("a page with <form> but no form element")
    return candidates[0]


def challenge_parameters(response: Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v", ...` challenge (RFC 6750 §3)."""
    header = response.headers.get("www-authenticate", "")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (to look at what the provider issued)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims
