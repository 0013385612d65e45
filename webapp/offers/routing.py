from django.urls import path

from offers.consumers import ProviderFeedConsumer

websocket_urlpatterns = [path("ws/providers/", ProviderFeedConsumer.as_asgi())]
