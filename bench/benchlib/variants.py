"""The servers compared: bare FastMCP and five builds of the generated server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WORKERS = Path(__file__).resolve().parent.parent / "workers"
# One tenant for every call, so the limiter works on one tenant x tool key.
TENANT = "acme"  # one the sample tool holds notes for
SCOPES = ("data:read",)
# High enough never to refuse a call: the limiter's cost is measured, not its refusals. An hour,
# so the Redis window outlives the run and can be checked at its end.
NEVER_REACHED_LIMIT = "100000000/hour"


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    server: str = "generated"  # bare | reference (hand-built from FastMCP's docs) | generated
    limiter: str = "off"  # off | memory | redis
    tracing: bool = False
    sampling: float = 1.0  # the share of calls traced (OTEL_TRACES_SAMPLER_ARG) when below 1
    redis_db: int = 0  # each Redis variant counts in its own database

    @property
    def generated(self) -> bool:
        return self.server == "generated"

    @property
    def authenticated(self) -> bool:
        """Sends the dev token and must refuse a call without one."""
        return self.server != "bare"

    @property
    def needs_redis(self) -> bool:
        return self.limiter == "redis"


BARE = Variant("bare", "bare FastMCP", server="bare")
# What a user would build by hand from FastMCP's documentation: JWTVerifier + RemoteAuthProvider,
# FastMCP's RateLimitingMiddleware, the OTel SDK (batch processor, OTLP/HTTP) and the ASGI middleware
# that continues an HTTP `traceparent` (bench/workers/reference_server.py).
REFERENCE = Variant(
    "reference",
    "hand-built reference (JWTVerifier + RateLimitingMiddleware + OTel SDK)",
    server="reference",
    limiter="memory",
    tracing=True,
)
FULL = Variant("full", "full stack (auth + Redis limit + tracing)", limiter="redis", tracing=True, redis_db=2)
# `./bench/run --quick`: the three the targets compare.
QUICK_VARIANTS: tuple[Variant, ...] = (BARE, REFERENCE, FULL)
VARIANTS: tuple[Variant, ...] = (
    BARE,
    REFERENCE,
    Variant("auth", "auth only"),
    Variant("auth_memory", "auth + memory limit", limiter="memory"),
    Variant("auth_redis", "auth + Redis limit", limiter="redis", redis_db=1),
    Variant("auth_tracing", "auth + tracing (OTLP)", tracing=True),
    FULL,
    # What tracing costs at the sampling rates production uses (the Kubernetes ConfigMap sets 10%).
    Variant("full_10", "full stack, 10% of calls traced", limiter="redis", tracing=True, sampling=0.1, redis_db=3),
    Variant("full_1", "full stack, 1% of calls traced", limiter="redis", tracing=True, sampling=0.01, redis_db=4),
)


@dataclass(frozen=True)
class Shared:
    """What every server start of one bench run shares."""

    python: Path  # the rendered project's interpreter
    package: str
    env_prefix: str
    workdir: Path
    redis_port: int
    receiver_port: int

    @property
    def dev_key_file(self) -> Path:
        """The dev signing key: made by the first token, read by every authenticated server."""
        return self.workdir / "dev-signing-key.pem"


def base_env(shared: Shared, environ: dict[str, str]) -> dict[str, str]:
    """Environment for every child: no proxies (loopback only), no FastMCP update check or banner."""
    env = {key: value for key, value in environ.items() if "proxy" not in key.lower()}
    env.update(
        {
            "NO_PROXY": "127.0.0.1,localhost",
            "FASTMCP_CHECK_FOR_UPDATES": "off",
            "FASTMCP_SHOW_SERVER_BANNER": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    # The project's settings, tracing variables and .env are set here only.
    return {key: value for key, value in env.items() if not key.startswith((shared.env_prefix, "OTEL_"))}


def settings_env(shared: Shared, variant: Variant) -> dict[str, str]:
    """The <PACKAGE>_* and OTEL_* variables of one generated variant (what production sets)."""
    p = shared.env_prefix
    env = {
        f"{p}TRANSPORT": "http",
        f"{p}AUTH_MODE": "dev",
        # A port-less public URL: one token (iss/aud) serves every server start on any free port.
        f"{p}PUBLIC_URL": "http://127.0.0.1",
        f"{p}DEV_KEY_FILE": str(shared.dev_key_file),
        f"{p}LOG_LEVEL": "INFO",
        f"{p}LOG_FORMAT": "json",
        f"{p}DEFAULT_RATE_LIMIT": NEVER_REACHED_LIMIT,
        f"{p}RATE_LIMIT_STORAGE_URL": "memory://",
    }
    if variant.limiter == "redis":
        env[f"{p}RATE_LIMIT_STORAGE_URL"] = f"redis://127.0.0.1:{shared.redis_port}/{variant.redis_db}"
    if variant.tracing:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{shared.receiver_port}"
        env["OTEL_SERVICE_NAME"] = service_name(variant)
    if variant.sampling < 1:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = str(variant.sampling)
    return env


def service_name(variant: Variant) -> str:
    """Each traced server's `service.name`: the receiver counts its spans apart from the others'."""
    return f"bench-{variant.key}"


def server_command(shared: Shared, variant: Variant, port: int, claims: dict[str, str]) -> list[str]:
    """The server's argv; `claims` are the dev token's issuer and audience, which the reference checks."""
    if variant.server == "bare":
        return [str(shared.python), str(WORKERS / "bare_server.py"), str(port)]
    if variant.server == "reference":
        endpoint = f"http://127.0.0.1:{shared.receiver_port}"
        script = str(WORKERS / "reference_server.py")
        key, service = str(shared.dev_key_file), service_name(variant)
        return [str(shared.python), script, str(port), key, claims["iss"], claims["aud"], endpoint, service]
    return [
        str(shared.python),
        str(WORKERS / "variant_server.py"),
        shared.package,
        str(port),
        "--limiter",
        "off" if variant.limiter == "off" else "on",
        "--tracing",
        "on" if variant.tracing else "off",
    ]
