"""What a GraphQL operation may do before it runs (`Admission`): plan limits, and subscriptions only
over the WebSocket.

Each root field of an operation counts as one request of the client's plan, as one REST call does,
so a GraphQL request is no way around the plans. The gateway (webapp/gateway/asgi.py) identified the
client and counted the request that carries the operations (an HTTP request to /graphql, or the
WebSocket's connect): that pays for the first root field. Each further one is counted when its
operation starts (the same field asked twice under one name is asked once; `__typename` and
introspection are free). An operation that would pass the limit is refused whole, with the gateway's
429 detail and `extensions` {status: 429, plan, limit, retry_after}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError, OperationType, get_operation_ast
from strawberry.extensions import SchemaExtension

from gateway import callers, runtime
from gateway.asgi import over_limit
from gateway.keys import Client
from gateway.plans import LIMITS


@dataclass
class Context:
    """A resolver's view of its request: what the gateway found (the caller, the data version), whether
    it came over the WebSocket, and how many root fields the request itself paid for not yet asked."""

    client: Client | None
    data_version: int | None
    streams: bool  # over the WebSocket, where subscriptions run
    prepaid: int = 1

    @classmethod
    def of(cls, asked) -> Context:
        """`asked`: the Django request, or the WebSocket's consumer (both carry the ASGI scope)."""
        return cls(callers.caller(asked), callers.data_version(asked), asked.scope["type"] == "websocket")


def asked(selections, fragments: dict[str, FragmentDefinitionNode]) -> set[str]:
    """The fields a selection set asks, by response name (fragments spread)."""
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                names.add((selection.alias or selection.name).value)
            continue
        inner = fragments[selection.name.value] if isinstance(selection, FragmentSpreadNode) else selection
        names |= asked(inner.selection_set.selections, fragments)
    return names


async def charge(context: Context, fields: int) -> None:
    """Count `fields` requests of the client's plan, the prepaid ones first; GraphQLError (429) when
    the plan's window is full. Without a client (not served through the gateway) nothing is counted."""
    paid = min(context.prepaid, fields)
    context.prepaid -= paid
    client = context.client
    if client is None:
        return
    limiter = runtime.limiter()
    for _ in range(fields - paid):
        decision = limiter.leased(client.identity) or await limiter.hit(client.identity, LIMITS[client.plan])
        if not decision.admitted:
            refusal = over_limit(client.plan, decision)
            raise GraphQLError(refusal.detail, extensions={"status": refusal.status, **refusal.extra})


class Admission(SchemaExtension):
    """Before an operation runs (validated: its fragments exist and do not loop): a subscription only
    over the WebSocket (400 over HTTP, which cannot carry one), and its root fields counted."""

    async def on_execute(self) -> AsyncIterator[None]:
        context, document = self.execution_context.context, self.execution_context.graphql_document
        operation = get_operation_ast(document, self.execution_context.operation_name)
        if operation is not None:
            if operation.operation == OperationType.SUBSCRIPTION and not context.streams:
                raise GraphQLError("subscriptions run over the WebSocket at /graphql (graphql-transport-ws)",
                                   extensions={"status": 400})  # fmt: skip
            fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            await charge(context, len(asked(operation.selection_set.selections, fragments)))
        yield
