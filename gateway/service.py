"""One exchange from resolved request to finished stream, independent of the wire format.

Route handlers call `Service.open`, which resolves the model, starts the backend and waits
for the first event, so that errors before any output (unknown model, prompt too long,
upstream down) still become a proper HTTP error. The returned `Exchange` is then iterated by
the wire format's streamer; metrics are kept here, in one place.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.backends.base import Backend
from gateway.catalog import Catalog, Route
from gateway.errors import LoragateError
from gateway.generation import Assembled, Event, Finish, GenerationRequest
from gateway.metrics import Metrics
from gateway.workloads import identify


@dataclass
class Exchange:
    """A generation in progress: iterate it once for the events."""

    interaction_id: str
    route: Route
    workload: str
    api: str
    started: float
    _first: Event | None
    _events: AsyncIterator[Event]
    _metrics: Metrics
    finish: Finish | None = None

    @property
    def version(self) -> str:
        return self.route.version

    async def __aiter__(self) -> AsyncIterator[Event]:
        labels = (self.api, self.workload, self.version)
        try:
            first, self._first = self._first, None
            async for event in _chain(first, self._events):
                if isinstance(event, Finish):
                    self.finish = event
                yield event
        except LoragateError as exc:
            self._metrics.errors.labels(*labels, exc.type).inc()
            raise
        finally:
            await self._events.aclose()
            self._close_metrics(labels)

    def _close_metrics(self, labels: tuple[str, str, str]) -> None:
        m = self._metrics
        m.latency.labels(*labels).observe(time.perf_counter() - self.started)
        m.requests.labels(*labels, "ok" if self.finish else "aborted").inc()
        if self.finish:
            m.tokens.labels("in", self.workload, self.version).inc(self.finish.prompt_tokens)
            m.tokens.labels("out", self.workload, self.version).inc(self.finish.completion_tokens)

    async def collect(self) -> Assembled:
        """Run to the end and put the answer together (non-streaming responses)."""
        answer = Assembled()
        async for event in self:
            answer.add(event)
        return answer


class Service:
    """Turns a `GenerationRequest` into an `Exchange` on the right backend model."""

    def __init__(self, backend: Backend, catalog: Catalog, metrics: Metrics) -> None:
        self.backend = backend
        self.catalog = catalog
        self.metrics = metrics

    async def open(
        self, request: GenerationRequest, *, api: str, workload_header: str | None = None
    ) -> Exchange:
        started = time.perf_counter()
        route = await self.catalog.resolve(request.model)
        request = request.model_copy(update={"model": route.backend_model})
        workload = identify(request, header=workload_header, alias=route.workload, api=api)
        labels = (api, workload, route.version)
        events = aiter(self.backend.generate(request))
        self.metrics.queue_depth.labels(route.version).set(self.backend.queue_depth())
        try:
            first = await anext(events, None)
        except BaseException as exc:
            await events.aclose()  # type: ignore[attr-defined]
            if isinstance(exc, LoragateError):
                self.metrics.errors.labels(*labels, exc.type).inc()
                self.metrics.requests.labels(*labels, "error").inc()
            raise
        self.metrics.ttft.labels(*labels).observe(time.perf_counter() - started)
        return Exchange(
            interaction_id=new_interaction_id(),
            route=route,
            workload=workload,
            api=api,
            started=started,
            _first=first,
            _events=events,
            _metrics=self.metrics,
        )


async def _chain(first: Event | None, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    if first is not None:
        yield first
    async for event in rest:
        yield event


def new_interaction_id() -> str:
    return "ia_" + uuid.uuid4().hex
