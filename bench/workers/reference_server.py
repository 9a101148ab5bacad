"""The stack a user would build by hand from FastMCP's documentation, serving bare_server's tool.

Run by the bench with the rendered project's Python:
    python reference_server.py PORT KEY_PEM ISSUER AUDIENCE OTLP_ENDPOINT SERVICE_NAME
- auth: FastMCP's `JWTVerifier` (RS256, the bench's dev key) behind `RemoteAuthProvider` (RFC 9728);
- limits: FastMCP's `RateLimitingMiddleware`, one in-memory token bucket per tenant claim, never
  exhausted (the bench measures its cost, not its refusals);
- tracing: the OpenTelemetry SDK as FastMCP's telemetry docs set it up (a `TracerProvider` with a
  `BatchSpanProcessor` and the OTLP/HTTP span exporter), FastMCP's native spans, and the ASGI
  `OpenTelemetryMiddleware`, which FastMCP needs to continue an HTTP `traceparent`.
No scope checks per tool, no audit log, no metrics, no span privacy: what ours adds on top.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bare_server import build_server, serve
from cryptography.hazmat.primitives import serialization
from fastmcp.server.auth import RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware.middleware import MiddlewareContext
from fastmcp.server.middleware.rate_limiting import RateLimitingMiddleware
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.middleware import Middleware

NEVER_REACHED_PER_SECOND = 1e9


def tenant_of(_: MiddlewareContext) -> str:
    token = get_access_token()
    return str(token.claims.get("tenant", token.client_id)) if token else "anonymous"


def main(port: int, key_file: Path, issuer: str, audience: str, otlp_endpoint: str, service: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)

    private_key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = JWTVerifier(public_key=public_pem.decode(), issuer=issuer, audience=audience, algorithm="RS256")
    auth = RemoteAuthProvider(
        token_verifier=verifier,
        authorization_servers=[issuer],
        base_url="http://127.0.0.1",
        scopes_supported=["data:read"],
    )
    limiter = RateLimitingMiddleware(
        max_requests_per_second=NEVER_REACHED_PER_SECOND,
        burst_capacity=int(NEVER_REACHED_PER_SECOND),
        get_client_id=tenant_of,
    )
    mcp = build_server(auth=auth, middleware=[limiter])
    # Without the receive/send spans, as ours: the reference differs from ours only in what it adds.
    serve(mcp, port, middleware=[Middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])])


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
