from django.urls import path

from offers.api import api

urlpatterns = [path("api/v1/", api.urls)]
