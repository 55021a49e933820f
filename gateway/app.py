"""The FastAPI application factory: the parts are built once here and handed to each other."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from gateway.api import feedback, ollama, openai
from gateway.api.errors import install_error_handlers
from gateway.api.front_door import FrontDoor
from gateway.api.middleware import LoragateHeaders
from gateway.backends import Backend, create_backend
from gateway.backends.versioned_engine import VersionedEngines
from gateway.config import Settings, parse_duration
from gateway.errors import UpstreamError
from gateway.recording.recorder import Recorder
from gateway.serving.catalog import Catalog, published_name
from gateway.serving.metrics import CONTENT_TYPE, Metrics
from gateway.serving.service import Service
from gateway.ui import routes as ui
from gateway.ui.dashboard import Dashboard
from gateway.ui.dashboard import Versions as DashboardVersions
from gateway.versions.handle import RegistryHandle
from gateway.versions.hosts import VersionHost, version_host
from gateway.versions.live import LiveRouting, policy_of
from gateway.versions.rollout import Rollout
from gateway.versions.router import Router
from gateway.versions.schedule import Retrainer, Scheduler

log = logging.getLogger("loragate")


@dataclass
class Versions:
    """What serves trained versions of the base: where they are hosted, the router between
    them, the registry they come from, the hot swap, live routing and scheduled retraining."""

    host: VersionHost
    router: Router
    registry: RegistryHandle
    rollout: Rollout
    live: LiveRouting
    retrainer: Retrainer  # the schedule's and the dashboard's retrains, one at a time
    served: str  # the name clients ask for

    @classmethod
    def of(cls, settings: Settings, host: VersionHost, preferred: str | None) -> Versions:
        served = published_name(preferred.removesuffix(":latest")) if preferred else host.name
        router = Router(host.name, served=served, canary_share=settings.canary_share)
        registry = RegistryHandle(settings.store_target, settings.home, host.path, host.name)
        live = LiveRouting(
            router, registry, policy=policy_of(settings), decide=settings.auto_promote
        )
        rollout = Rollout(host, router, registry, on_change=lambda: asyncio.to_thread(live.step))
        return cls(host, router, registry, rollout, live, _retrainer(settings, host), served)

    async def start(self, settings: Settings, stack: AsyncExitStack) -> Scheduler | None:
        stack.callback(self.registry.close)
        await self.rollout.start()
        stack.push_async_callback(self.rollout.close)
        self.live.start()
        stack.push_async_callback(self.live.close)
        scheduler = _scheduler(settings, self.retrainer)
        if scheduler is not None:
            scheduler.start()
            stack.push_async_callback(scheduler.close)
        return scheduler


class Companion(Protocol):
    """Work that runs beside serving and feeds the recorder (a collector following files)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def create_app(
    settings: Settings,
    backend: Backend | None = None,
    companions: Sequence[Callable[[Recorder], Companion]] = (),
) -> FastAPI:
    """Build the gateway; the backend starts (loads its model) in the app's lifespan, and each
    companion, made with the recorder, runs while the app serves."""
    backend = backend or create_backend(settings)
    # For an upstream, --model names the model that aliases (auto, continue, ...) go to.
    preferred = settings.model if settings.backend != "llamacpp" else None
    host = version_host(settings, backend)
    versions = Versions.of(settings, host, preferred) if host is not None else None
    catalog = Catalog(
        backend,
        preferred=preferred,
        versions=versions.router.versions if versions else None,
        versioned=(versions.host.name, versions.served) if versions else None,
    )
    metrics = Metrics()
    recorder = Recorder(settings.home, store_url=settings.store_url, enabled=settings.record,
                        skip_workloads=settings.skipped_workloads,
                        skip_paths=settings.skipped_paths)  # fmt: skip

    dashboard = Dashboard(settings, recorder, versions=(
        DashboardVersions(versions.registry, versions.host.name, versions.retrainer)
        if versions else None))  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = False
        async with AsyncExitStack() as stack:  # stops in the reverse order of starting
            await recorder.start()
            stack.push_async_callback(recorder.close)  # drains every queued record
            stack.callback(dashboard.close)
            await backend.start()
            stack.push_async_callback(backend.close)
            try:
                await catalog.refresh()
            except UpstreamError as exc:  # an upstream may come up later: 502 until then
                log.warning("%s", exc.message)
            app.state.scheduler = await versions.start(settings, stack) if versions else None
            await _start_companions(companions, recorder, stack)
            app.state.ready = True
            try:
                yield
            finally:
                app.state.ready = False

    app = FastAPI(title="loragate", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    router = versions.router if versions else None
    app.state.service = Service(
        backend, catalog, metrics, recorder, router, host,
        fallback=settings.fallback, shadow_share=settings.shadow_share,
    )  # fmt: skip
    app.state.rollout = versions.rollout if versions else None
    app.state.dashboard = dashboard
    _add_routes(app, catalog, metrics)
    default_version = router.active_version if router else catalog.default_version
    app.add_middleware(LoragateHeaders, default_version=default_version, api_key=settings.api_key)
    app.add_middleware(  # outermost: nothing runs for a web page's request
        FrontDoor, allowed_hosts=settings.allowed_hosts, origins=settings.origins,
        check_host=settings.is_loopback,
    )  # fmt: skip
    return app


async def _start_companions(
    companions: Sequence[Callable[[Recorder], Companion]], recorder: Recorder, stack: AsyncExitStack
) -> None:
    for make in companions:
        companion = make(recorder)
        await companion.start()
        stack.push_async_callback(companion.close)  # closed before the recorder drains


def _add_routes(app: FastAPI, catalog: Catalog, metrics: Metrics) -> None:
    app.include_router(openai.router)
    app.include_router(feedback.router)
    app.include_router(ollama.router)
    app.include_router(ui.router)
    install_error_handlers(app)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        names = catalog.published()
        if request.app.state.service.closing:
            return JSONResponse({"status": "stopping", "models": names}, status_code=503)
        status = 200 if getattr(request.app.state, "ready", False) else 503
        return JSONResponse(
            {"status": "ok" if status == 200 else "loading", "models": names}, status_code=status
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def _retrainer(settings: Settings, host: VersionHost) -> Retrainer:
    """Retrains started beside serving; the embedded engine keeps one core meanwhile."""

    async def hand_over(training: bool) -> None:
        if isinstance(host, VersionedEngines):
            await host.set_threads(1 if training else settings.n_threads)

    return Retrainer(settings.home, on_busy=hand_over)


def _scheduler(settings: Settings, retrainer: Retrainer) -> Scheduler | None:
    """Scheduled retraining, when `retrain_every` is set."""
    if not settings.retrain_every:
        return None
    return Scheduler(
        settings.store_target,
        retrainer,
        every=parse_duration(settings.retrain_every),
        min_new=settings.retrain_min_new_examples,
    )
