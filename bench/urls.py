from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as product_urlpatterns


def hello(request: HttpRequest) -> HttpResponse:
    """The floor: the same server and middleware as every page, and no work of its own."""
    return HttpResponse("Hello, world", content_type="text/plain")


urlpatterns = [path("bench/hello/", hello, name="bench-hello"), *product_urlpatterns]
