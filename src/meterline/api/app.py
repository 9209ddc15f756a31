"""The ASGI application: routers, error handlers, middleware and service lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from meterline import __version__
from meterline.api.errors import install_error_handlers
from meterline.api.middleware import RequestIdMiddleware
from meterline.api.routes import admin, analytics, events, health, insights, oauth, query
from meterline.api.services import Services
from meterline.clock import Clock, system_clock
from meterline.config import Settings


def create_app(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """Build the Meterline server app; services open at start-up and close at shutdown."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.open(settings, clock)
        app.state.services = services
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="Meterline",
        version=__version__,
        description="API analytics and rate limiting: events in, analytics out.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (
        oauth.router,
        events.router,
        analytics.router,
        query.router,
        admin.router,
        health.router,
        insights.router,
    ):
        app.include_router(router)
    from meterline.dashboard import views

    app.include_router(views.router)
    app.add_middleware(RequestIdMiddleware)
    return app
