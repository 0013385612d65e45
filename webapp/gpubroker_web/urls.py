from django.urls import include, path

from gpubroker_web.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("", include("web.urls")),  # the offers page at /, data quality at /dq/ (webapp/web)
]
