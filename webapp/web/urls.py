from django.urls import path, re_path

from web import views

urlpatterns = [
    path("", views.index, name="index"),
    path("dq/", views.data_quality, name="dq"),
    path("analytics/daily", views.daily_analytics, name="analytics-daily"),
    re_path(r"^dq/docs/(?P<page>.*)$", views.data_docs, name="dq-docs"),
    re_path(r"^dq/vendor/(?P<path>.*)$", views.data_docs_vendor, name="dq-vendor"),
    re_path(r"^static/(?P<path>web/.*)$", views.static, name="static"),
]
