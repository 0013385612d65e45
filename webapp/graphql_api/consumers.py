"""`/graphql` over the WebSocket (subprotocol `graphql-transport-ws`): subscriptions, and queries too.

Behind the gateway like `/ws/`: the key is sent as on the feed's socket (`Authorization` header, or
the subprotocol `bearer.<key>` beside `graphql-transport-ws` for browsers), and the connect counts as
one request of the plan (it pays for the first root field: graphql_api.limits). At most
`MAX_OPERATIONS` operations run at once on one socket.
"""

from __future__ import annotations

from django.urls import path
from strawberry.channels import GraphQLWSConsumer
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graphql_api.limits import Context
from graphql_api.schema import schema

MAX_OPERATIONS = 10


class GraphQLConsumer(GraphQLWSConsumer):
    async def get_context(self, request, response) -> Context:
        return Context.of(self)


# Any Origin, as the feed's socket (gpubroker_web/asgi.py): public data and no cookies, nothing to hijack.
websocket_urlpatterns = [
    path("graphql", GraphQLConsumer.as_asgi(schema=schema, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                                            max_subscriptions_per_connection=MAX_OPERATIONS, allowed_origins=("*",))),
]  # fmt: skip
