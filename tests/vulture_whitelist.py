"""Names that libraries call or read, which vulture cannot see used (tests/dead_code.py scans this file).

Each line uses a name: a hook a library calls on our subclass, an attribute it reads, a field it
serializes. Decorated entry points (validators, routes, tools, fixtures) are ignored by decorator
instead (dead_code.ENTRY_POINT_DECORATORS).
"""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# Python itself: a module's `__getattr__` (PEP 562), which imports the OAuth proxy class on first
# use (auth/providers/).
_.__getattr__
# FastMCP middleware hooks (fastmcp.server.middleware.Middleware).
_.on_call_tool
_.on_read_resource
_.on_get_prompt
_.on_list_tools
_.on_list_resources
_.on_list_resource_templates
_.on_list_prompts
_.on_request
# FastMCP auth: the scopes a 401/403 challenge names; the OAuth proxy's scope hooks (Entra's, in
# auth/providers/entra.py); the JWT verifier's key-cache lifetime, which it reads (auth/verifier.py).
_.get_challenge_scopes
_._prepare_scopes_for_token_exchange
_._prepare_scopes_for_upstream_refresh
_._translate_scopes_from_idp
_._cache_ttl
# pydantic and pydantic-settings: model configuration, custom settings sources.
_.model_config
_.get_field_value
_.settings_customise_sources
# Fields of the sample tools' result models: serialized into the tool's structured output.
_.id
_.python
_.uptime_seconds
# limits' storage interface (limits.storage.Storage, MovingWindowSupport), implemented in memory_store.py.
_.base_exceptions
_.acquire_entry
_.get_moving_window
_.incr
_.get_expiry
# A cache key: functools.lru_cache keys the RSA key on the file's mtime (auth/dev.py), the body never reads it.
_.mtime_ns
# The signal handler's signature: signal.signal passes (signum, frame) (cli.py).
_.frame
# pytest reads a module's `pytestmark`.
_.pytestmark
# OpenTelemetry's process-wide providers, which the telemetry tests reset between tests.
_._TRACER_PROVIDER
_._TRACER_PROVIDER_SET_ONCE
_._METER_PROVIDER
_._METER_PROVIDER_SET_ONCE
# http.server request handlers of the tests' stand-in servers.
_.do_GET
_.do_POST
_.log_message
