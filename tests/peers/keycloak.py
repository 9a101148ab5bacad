"""A real Keycloak on 127.0.0.1 for end-to-end tests.

The distribution comes from Maven Central (`mvn dependency:copy`, about 180 MB) into
~/.cache/mcp-template-peers/keycloak and is reused by every later run, as are two things a first
start makes: the build Keycloak writes under `lib/` and an initial database (schema, master
realm, a bootstrap admin with random credentials). Each server runs from a home folder of its
own: `bin/kc.sh` copied, `lib/`, `themes/`, `providers/` and `conf/` linked to the cached
distribution, and `data/` holding a copy of the initial database and the realms to import, so
servers never share state.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peers.machine import CACHE_ROOT, cache_lock, free_port

# The newest 26.x on Maven Central; FastMCP's Keycloak support needs 26.6 or later (MCP-compatible DCR).
KEYCLOAK_VERSION = "26.7.3"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
HEAP = "-Xms64m -Xmx512m"
# The client compiler alone: a test server lives for minutes, and on two shared cores the optimizing
# compiler's warm-up more than doubles the start (measured: about 30 s instead of 70 s to serve a realm).
JIT = "-XX:TieredStopAtLevel=1"
LINKED = ("lib", "themes", "providers", "conf")


def cache_dir() -> Path:
    return CACHE_ROOT / "keycloak"


def _extract(archive: Path, destination: Path) -> None:
    """Unzip keeping the executable bits: `unzip` when present (ten times faster), else zipfile."""
    unzip = shutil.which("unzip")
    if unzip is not None:
        subprocess.run([unzip, "-q", str(archive), "-d", str(destination)], check=True, timeout=600)
        return
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            target = Path(zipped.extract(member, destination))
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                target.chmod(mode)


def distribution(version: str = KEYCLOAK_VERSION) -> Path:
    """The unpacked Keycloak `version`, downloaded through Maven the first time."""
    cache = cache_dir()
    home = cache / f"keycloak-{version}"
    if (home / "bin" / "kc.sh").is_file():
        return home
    with cache_lock(cache / ".lock"):
        if (home / "bin" / "kc.sh").is_file():
            return home
        archive = cache / f"keycloak-quarkus-dist-{version}.zip"
        if not archive.is_file():
            mvn = shutil.which("mvn")
            if mvn is None:
                raise RuntimeError("Maven (`mvn`) is required to download Keycloak: apt-get install maven")
            artifact = f"org.keycloak:keycloak-quarkus-dist:{version}:zip"
            subprocess.run(
                [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={cache}"],
                check=True,
                timeout=1800,
            )
        unpacking = cache / f".unpacking-{version}"
        shutil.rmtree(unpacking, ignore_errors=True)
        _extract(archive, unpacking)
        (unpacking / f"keycloak-{version}").rename(home)
        shutil.rmtree(unpacking, ignore_errors=True)
        archive.unlink()  # Maven keeps its own copy in the local repository
    return home


class KeycloakError(RuntimeError):
    pass


@dataclass
class Keycloak:
    """A running Keycloak: its URL, bootstrap admin and process."""

    home: Path
    port: int
    admin_username: str
    admin_password: str
    process: subprocess.Popen[bytes]
    log: Path
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}"

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def wait_ready(self, realm: str, timeout: float = 600) -> float:
        """Seconds from the start until `realm`'s discovery document answers (the import is done)."""
        deadline = time.monotonic() + timeout
        probe = f"{self.issuer(realm)}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KeycloakError(f"Keycloak exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(probe, timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise KeycloakError(f"Keycloak did not serve realm {realm!r} within {timeout:.0f} s:\n{self.log_tail()}")

    def rss_bytes(self) -> int:
        """Resident memory of the server: kc.sh and the JVM it runs (its own process group)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:  # the process group id
                    status = (stat.parent / "status").read_text()
                    total += sum(
                        int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")
                    )
            except (OSError, IndexError, ValueError):
                continue
        return total

    def admin_token(self) -> str:
        body = post_form(
            f"{self.issuer('master')}/protocol/openid-connect/token",
            {
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_username,
                "password": self.admin_password,
            },
        )
        return str(body["access_token"])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin REST API (`path` under /admin/realms) as the bootstrap admin."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/admin/realms{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.admin_token()}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise KeycloakError(f"{method} {path}: HTTP {error.code} {detail}") from error
        return json.loads(payload) if payload else None

    def client_uuid(self, realm: str, client_id: str) -> str:
        found = self.admin("GET", f"/{realm}/clients?clientId={urllib.parse.quote(client_id)}")
        if not found:
            raise KeycloakError(f"no client {client_id!r} in realm {realm!r}")
        return str(found[0]["id"])

    def new_client_secret(self, realm: str, client_id: str) -> str:
        """Have Keycloak generate a fresh secret for `client_id` and return it."""
        uuid = self.client_uuid(realm, client_id)
        return str(self.admin("POST", f"/{realm}/clients/{uuid}/client-secret")["value"])

    def set_password(self, realm: str, username: str, password: str) -> None:
        users = self.admin("GET", f"/{realm}/users?exact=true&username={urllib.parse.quote(username)}")
        if not users:
            raise KeycloakError(f"no user {username!r} in realm {realm!r}")
        credential = {"type": "password", "value": password, "temporary": False}
        self.admin("PUT", f"/{realm}/users/{users[0]['id']}/reset-password", credential)

    def stop(self, timeout: float = 30) -> None:
        """Stop this Keycloak by its PID: SIGTERM, then SIGKILL to its process group if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()  # kc.sh passes it on to the JVM and waits for it
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # The JVM is kc.sh's child in the process group this server was started in.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)


def _launch(
    dist: Path,
    home: Path,
    realms: list[Mapping[str, Any]],
    admin: tuple[str, str],
    bootstrap: bool,
    port: int,
    options: Sequence[str] = (),
) -> Keycloak:
    """`kc.sh start-dev` on 127.0.0.1 from `home` (set up here), importing `realms`; returns at once."""
    (home / "bin").mkdir(parents=True)
    shutil.copy2(dist / "bin" / "kc.sh", home / "bin" / "kc.sh")
    for name in LINKED:
        (home / name).symlink_to(dist / name, target_is_directory=True)
    imports = home / "data" / "import"
    imports.mkdir(parents=True, exist_ok=True)
    for realm in realms:
        (imports / f"{realm['realm']}-realm.json").write_text(json.dumps(realm, indent=2))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KC_", "KEYCLOAK_"))}
    # kc.sh ignores JAVA_OPTS_KC_HEAP when JAVA_OPTS is set.
    env.pop("JAVA_OPTS", None)
    env["JAVA_OPTS_KC_HEAP"] = HEAP
    env["JAVA_OPTS_APPEND"] = f"{JIT} {env.get('JAVA_OPTS_APPEND', '')}".strip()
    if bootstrap:
        env.update({"KC_BOOTSTRAP_ADMIN_USERNAME": admin[0], "KC_BOOTSTRAP_ADMIN_PASSWORD": admin[1]})
    command = [str(home / "bin" / "kc.sh"), "start-dev", f"--http-port={port}", "--http-host=127.0.0.1", *options]
    if realms:
        command.append("--import-realm")
    log = home / "keycloak.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=home, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Keycloak(home, port, admin[0], admin[1], process, log)


def initial_state(version: str = KEYCLOAK_VERSION, options: Sequence[str] = ()) -> Path:
    """A database holding Keycloak's schema and master realm with a bootstrap admin, made once per cache.

    A first start spends about half its time creating the schema and the master realm; servers
    start from a copy of this database instead. The admin's random credentials sit next to it.
    `options` are those the servers will run with: Keycloak rebuilds itself (about 25 s) whenever
    its build options change, so the first start builds what the servers use.
    """
    cache = cache_dir()
    state = cache / f"state-{version}"
    if (state / "admin.json").is_file():
        return state
    dist = distribution(version)
    with cache_lock(cache / ".lock"):
        if (state / "admin.json").is_file():
            return state
        building = cache / f".state-{version}-building"
        shutil.rmtree(building, ignore_errors=True)
        admin = (f"admin-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
        keycloak = _launch(dist, building / "home", [], admin, bootstrap=True, port=free_port(), options=options)
        try:
            keycloak.wait_ready("master")
        finally:
            keycloak.stop()
        database = building / "home" / "data" / "h2"
        if not (database / "keycloakdb.mv.db").is_file():
            raise KeycloakError(f"Keycloak left no database in {database}:\n{keycloak.log_tail()}")
        (building / "state").mkdir()
        database.rename(building / "state" / "h2")
        credentials = building / "state" / "admin.json"
        credentials.touch(mode=0o600)
        credentials.write_text(json.dumps({"username": admin[0], "password": admin[1]}))
        (building / "state").rename(state)
        shutil.rmtree(building, ignore_errors=True)
    return state


def start(
    realms: list[Mapping[str, Any]], home: Path, port: int | None = None, options: Sequence[str] = ()
) -> Keycloak:
    """Start Keycloak on 127.0.0.1 (`port` or a free one) importing `realms`, with command-line
    `options`; returns at once (see `wait_ready`)."""
    dist = distribution()
    state = initial_state(options=options)
    admin = json.loads((state / "admin.json").read_text())
    (home / "data").mkdir(parents=True)
    shutil.copytree(state / "h2", home / "data" / "h2")
    credentials = (admin["username"], admin["password"])
    return _launch(dist, home, realms, credentials, bootstrap=False, port=port or free_port(), options=options)


def send_json(method: str, url: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
    """A JSON request (`token` as its bearer); the status and the decoded answer, refusals included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return status, json.loads(payload) if payload else None


def post_form(url: str, form: Mapping[str, str], *, basic: tuple[str, str] | None = None) -> dict[str, Any]:
    """POST a form and decode the JSON answer, errors included (OAuth errors are JSON)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    if basic is not None:
        user, secret = (urllib.parse.quote(part, safe="") for part in basic)
        token = f"{user}:{secret}".encode()
        request.add_header("Authorization", f"Basic {base64.b64encode(token).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise KeycloakError(f"POST {url}: HTTP {error.code} {error.read().decode(errors='replace')}") from error
    return body
