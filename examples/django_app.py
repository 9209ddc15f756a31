"""Django (one file) with Meterline capture.

Run: ``METERLINE_URL=… METERLINE_INGEST_KEY=… python django_app.py runserver``. In a
project, add ``"meterline.capture.django.MeterlineMiddleware"`` to ``MIDDLEWARE`` and a
``METERLINE = {"identify": "myapp.meterline.customer"}`` setting.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def customer(request: HttpRequest) -> str | None:
    """The consumer: here the API key's owner sent in a header."""
    return request.headers.get("X-Customer")


def get_order(request: HttpRequest, order_id: int) -> HttpResponse:
    return JsonResponse({"order_id": order_id})


def orders(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"bytes": len(request.body)}, status=201)


def boom(request: HttpRequest) -> HttpResponse:
    return HttpResponse("down for maintenance", status=503)


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")  # the client gets a 500; capture records it


urlpatterns = [
    path("orders/<int:order_id>", get_order),
    path("orders", orders),
    path("boom", boom),
    path("crash", crash),
]


def configure(**meterline: Any) -> None:
    """Configure Django for this one-file app; ``meterline`` is the METERLINE setting."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only-not-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=["meterline.capture.django.MeterlineMiddleware"],
        METERLINE={"identify": f"{__name__}.customer", **meterline},
    )


if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    configure()
    execute_from_command_line(sys.argv)
