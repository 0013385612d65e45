from django.urls import path

from feed.consumers import FeedConsumer

websocket_urlpatterns = [
    path("ws/providers/", FeedConsumer.as_asgi()),
    path("ws/providers/<str:provider>/", FeedConsumer.as_asgi()),  # starts subscribed to that provider
]
