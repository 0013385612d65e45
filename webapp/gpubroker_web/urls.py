from django.urls import include, path

from gpubroker_web.api import api
from graphql_api.schema import schema
from graphql_api.views import GraphQLView

urlpatterns = [
    path("api/v1/", api.urls),
    path("graphql", GraphQLView.as_view(schema=schema)),  # its WebSocket side: graphql_api.consumers
    path("", include("web.urls")),  # the offers page at /, data quality at /dq/ (webapp/web)
]
