"""What an MCP request asks for: the tool, resource or prompt it names, found once per request for
every middleware that guards it (ComponentMiddleware: audit, access control, rate limits).

A resource request names a URI: it resolves to the concrete resource of that URI, or else to the
template that matches it, whose URI parameters are its arguments. Limits and audit records use the
component's name, never the URI, so a template is one limit however many URIs it serves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import mcp_types as mt
from fastmcp.prompts import Prompt, PromptResult
from fastmcp.resources import Resource, ResourceResult, ResourceTemplate
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult

Kind = Literal["tool", "resource", "prompt"]
Component = Tool | Resource | ResourceTemplate | Prompt
GuardedRequest = mt.CallToolRequestParams | mt.ReadResourceRequestParams | mt.GetPromptRequestParams
R = TypeVar("R")

# The MCP method that uses each kind of component.
METHODS: dict[Kind, str] = {"tool": "tools/call", "resource": "resources/read", "prompt": "prompts/get"}
# The attribute that names the component on metrics: the OpenTelemetry conventions' for tools and
# prompts; for resources theirs is the URI (`mcp.resource.uri`, on spans), unbounded for a template.
NAME_ATTRIBUTES: dict[Kind, str] = {
    "tool": "gen_ai.tool.name",
    "resource": "mcp.resource.name",
    "prompt": "gen_ai.prompt.name",
}


def label(kind: Kind, name: str) -> str:
    """The name a component's rate limit is keyed and configured by: a tool's own name, or
    `resource:<name>` / `prompt:<name>` (MCP tool names cannot hold a colon, so none collide)."""
    return name if kind == "tool" else f"{kind}:{name}"


def kind_of(component: Component) -> Kind:
    if isinstance(component, Tool):
        return "tool"
    return "prompt" if isinstance(component, Prompt) else "resource"


@dataclass(frozen=True)
class Requested:
    """The component an MCP request names, or only its name when the server has none such."""

    kind: Kind
    name: str  # the tool's or prompt's name; a resource's name (its URI when there is no such resource)
    component: Component | None = None  # None: the server has no such component (FastMCP answers "Unknown")
    arguments: Mapping[str, Any] = field(default_factory=dict)  # a template's URI parameters included

    @property
    def label(self) -> str:
        return label(self.kind, self.name)

    @property
    def method(self) -> str:
        return METHODS[self.kind]

    @property
    def metric_attributes(self) -> dict[str, str]:
        """The method and component name: bounded, as metric attributes must be (a name the server
        does not serve is "unknown", so made-up names add no series)."""
        name = self.name if self.component is not None else "unknown"
        return {"mcp.method.name": self.method, NAME_ATTRIBUTES[self.kind]: name}


async def requested(context: MiddlewareContext[Any]) -> Requested:
    """The component `context`'s request (tools/call, resources/read or prompts/get) names."""
    message: GuardedRequest = context.message
    fastmcp_context = context.fastmcp_context
    provider = fastmcp_context.fastmcp.local_provider if fastmcp_context is not None else None
    if isinstance(message, mt.ReadResourceRequestParams):
        uri = str(message.uri)
        if provider is not None and (resource := await provider.get_resource(uri)) is not None:
            return Requested("resource", resource.name, resource)
        if provider is not None and (template := await provider.get_resource_template(uri)) is not None:
            return Requested("resource", template.name, template, template.matches(uri) or {})
        return Requested("resource", uri)
    if isinstance(message, mt.GetPromptRequestParams):
        prompt = await provider.get_prompt(message.name) if provider is not None else None
        return Requested("prompt", message.name, prompt, message.arguments or {})
    tool = await provider.get_tool(message.name) if provider is not None else None
    return Requested("tool", message.name, tool, message.arguments or {})


# The message of the request in progress and the component it names: the outermost ComponentMiddleware
# looks it up (provider queries) and those inside it reuse it until that request ends. Keyed by the
# message's identity, as FastMCP builds a new message for every request (a nested one too): a
# middleware that replaces the message (`context.copy(message=...)`) gets a lookup of its own.
_resolved: ContextVar[tuple[object, Requested] | None] = ContextVar("resolved_component", default=None)


class ComponentMiddleware(Middleware, ABC):
    """A middleware for the requests that name a component (tools/call, resources/read, prompts/get):
    each reaches `on_component_request` with the component it names, looked up once per request."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        return await self._with_target(context, call_next)

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        return await self._with_target(context, call_next)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        return await self._with_target(context, call_next)

    @abstractmethod
    async def on_component_request(
        self, target: Requested, context: MiddlewareContext[Any], call_next: CallNext[Any, R]
    ) -> R:
        """Answers the request for `target`: runs it with `call_next(context)`, or refuses it."""

    async def _with_target(self, context: MiddlewareContext[Any], call_next: CallNext[Any, R]) -> R:
        resolved = _resolved.get()
        if resolved is not None and resolved[0] is context.message:
            return await self.on_component_request(resolved[1], context, call_next)
        target = await requested(context)
        token = _resolved.set((context.message, target))
        try:
            return await self.on_component_request(target, context, call_next)
        finally:
            _resolved.reset(token)
