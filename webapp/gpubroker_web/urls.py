from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.static import serve

from gpubroker import quality
from gpubroker_web.api import api


def data_quality(request: HttpRequest, page: str = "") -> HttpResponse:
    """The GX Data Docs built by the gpubroker_dq_report DAG."""
    if not (quality.DOCS_DIR / "index.html").is_file():
        return HttpResponse("No data-quality report yet: the gpubroker_dq_report DAG builds it.", status=404,
                            content_type="text/plain")  # fmt: skip
    return serve(request, page or "index.html", document_root=quality.DOCS_DIR)


urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^dq/(?P<page>.*)$", data_quality),
]
