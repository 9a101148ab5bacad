"""A tiny OTLP/HTTP receiver on loopback: accepts POST /v1/traces (and /v1/metrics, /v1/logs), answers 200.

Run by the bench as its own process: `python otlp_receiver.py PORT`. Counts export requests,
bytes and, where `opentelemetry-proto` is importable, spans per `service.name`; GET /stats returns
the counts as JSON.
"""

from __future__ import annotations

import gzip
import importlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _request_type() -> Any:
    """ExportTraceServiceRequest when opentelemetry-proto is importable; else spans are not counted."""
    try:
        module = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    except ImportError:
        return None
    return module.ExportTraceServiceRequest


REQUEST_TYPE: Any = _request_type()
SIGNALS = ("/v1/traces", "/v1/metrics", "/v1/logs")
_lock = threading.Lock()
_stats: dict[str, int] = {"requests": 0, "bytes": 0, "spans": 0, "trace_requests": 0, "metric_requests": 0}
_spans_by_service: dict[str, int] = {}


def count_spans(body: bytes) -> dict[str, int]:
    """Spans per `service.name` resource attribute."""
    if REQUEST_TYPE is None:
        return {}
    request = REQUEST_TYPE()
    request.ParseFromString(body)
    counts: dict[str, int] = {}
    for resource in request.resource_spans:
        names = [a.value.string_value for a in resource.resource.attributes if a.key == "service.name"]
        service = names[0] if names else "unknown"
        counts[service] = counts.get(service, 0) + sum(len(scope.spans) for scope in resource.scope_spans)
    return counts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path not in SIGNALS:
            self._reply(404, b"", "text/plain")
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        spans = count_spans(body) if self.path == "/v1/traces" else {}
        with _lock:
            _stats["requests"] += 1
            _stats["bytes"] += len(body)
            _stats["spans"] += sum(spans.values())
            for service, count in spans.items():
                _spans_by_service[service] = _spans_by_service.get(service, 0) + count
            _stats["trace_requests" if self.path == "/v1/traces" else "metric_requests"] += 1
        self._reply(200, b"", "application/x-protobuf")  # an empty Export*ServiceResponse

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._reply(404, b"", "text/plain")
            return
        with _lock:
            payload = json.dumps({**_stats, "spans_by_service": _spans_by_service}).encode()
        self._reply(200, payload, "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
