"""`/graphql` over HTTP (POST, or GET for queries; GraphiQL for a browser): a Django view, behind the
gateway like the REST API (webapp/gateway/asgi.py: key, plan limit, RateLimit headers)."""

from __future__ import annotations

from strawberry.django.views import AsyncGraphQLView

from graphql_api.limits import Context


class GraphQLView(AsyncGraphQLView):
    async def get_context(self, request, response) -> Context:
        return Context.of(request)
