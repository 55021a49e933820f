"""One exchange from resolved request to finished stream, independent of the wire format.

Route handlers call `Service.open`, which resolves the model, starts the backend and waits
for the first event, so that errors before any output (unknown model, prompt too long,
upstream down) still become a proper HTTP error. The returned `Exchange` is then iterated by
the wire format's streamer; metrics are kept here, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field

from gateway.backends.protocol import Backend
from gateway.errors import LoragateError, ModelNotFound, ShuttingDown
from gateway.generation import Assembled, Event, Finish, GenerationRequest
from gateway.recording.recorder import Recorder
from gateway.recording.records import InteractionRecord, answer_problem
from gateway.serving.catalog import BASE_VERSION, Catalog, Route
from gateway.serving.metrics import Metrics
from gateway.serving.workloads import WORKLOAD_HEADER, identify
from gateway.versions.hosts import VersionHost
from gateway.versions.router import PIN_HEADER, Choice, Router

log = logging.getLogger("loragate")


@dataclass
class Exchange:
    """A generation in progress: iterate it once for the events."""

    interaction_id: str
    route: Route
    version: str
    propensity: float
    workload: str
    api: str
    started: float
    ttft: float
    request: GenerationRequest
    model_requested: str
    client: str | None
    _first: Event | None
    _events: AsyncGenerator[Event, None]
    _metrics: Metrics
    _recorder: Recorder
    answer: Assembled = field(default_factory=Assembled)
    error: str | None = None
    kind: str = "served"
    fallback_of: str | None = None

    @property
    def finish(self) -> Finish | None:
        return self.answer.finish

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        labels = (self.api, self.workload, self.version)
        try:
            first, self._first = self._first, None
            async for event in _chain(first, self._events):
                self.answer.add(event)
                yield event
        except LoragateError as exc:
            self._metrics.errors.labels(*labels, exc.type).inc()
            self.error = exc.message
            raise
        finally:
            await self._events.aclose()
            self.settle()

    def settle(self) -> None:
        """Count the exchange and record it as it stands: complete, failed, or `aborted` when
        it stopped early (its client left, even before the first event)."""
        self._close_metrics((self.api, self.workload, self.version))
        self._recorder.submit(self._record())

    def _record(self) -> InteractionRecord:
        status = "complete" if self.finish else ("error" if self.error else "aborted")
        return InteractionRecord(
            id=self.interaction_id,
            created_at=time.time(),
            api=self.api,
            workload=self.workload,
            model_requested=self.model_requested,
            version=self.version,
            propensity=self.propensity,
            request=self.request,
            answer=self.answer,
            status=status,
            error=self.error,
            client=self.client,
            latency_ms=(time.perf_counter() - self.started) * 1000,
            ttft_ms=self.ttft * 1000,
            kind=self.kind,
            fallback_of=self.fallback_of,
        )

    def _close_metrics(self, labels: tuple[str, str, str]) -> None:
        m = self._metrics
        m.latency.labels(*labels).observe(time.perf_counter() - self.started)
        m.requests.labels(*labels, "ok" if self.finish else "aborted").inc()
        if self.finish:
            m.tokens.labels("in", self.workload, self.version).inc(self.finish.prompt_tokens)
            m.tokens.labels("out", self.workload, self.version).inc(self.finish.completion_tokens)

    async def buffer(self) -> Assembled:
        """Generate the whole answer now, before the client sees any of it, and return it;
        iterating the exchange afterwards replays it (an error comes at the same point)."""
        events: list[Event] = []
        answer, failure = Assembled(), None
        try:
            async for event in _chain(self._first, self._events):
                events.append(event)
                answer.add(event)
        except LoragateError as exc:
            failure = exc
        except asyncio.CancelledError:
            self.answer = answer
            self.settle()
            raise
        finally:
            await self._events.aclose()
        self._first, self._events = None, _replay(events, failure)
        return answer

    async def discard(self, kind: str) -> None:
        """Record a buffered answer the client will not get, as `kind`."""
        self.kind = kind
        with contextlib.suppress(LoragateError):
            await self.collect()

    async def collect(self) -> Assembled:
        """Run to the end and put the answer together (non-streaming responses)."""
        async for _ in self:
            pass
        return self.answer


class Service:
    """Turns a `GenerationRequest` into an `Exchange` on the right backend model."""

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        metrics: Metrics,
        recorder: Recorder,
        router: Router | None = None,
        host: VersionHost | None = None,
        *,
        fallback: str | None = None,
        shadow_share: float = 0.0,
    ) -> None:
        """`router` and `host`: choose among the versions of the base the backend serves,
        and name the chosen one as the backend knows it; without them every request goes to
        the model as it is (`@v0`). `fallback`: answer again when an answer fails its
        automatic check (`next`: the lane's other version; else a model name);
        `shadow_share`: how often a lane's candidate also answers in the background."""
        self.backend = backend
        self.catalog = catalog
        self.metrics = metrics
        self.recorder = recorder
        self.closing = False  # set when the gateway stops: new generations get 503
        self.router = router
        self.host = host
        self.fallback = fallback
        self.shadow_share = shadow_share
        self._shadows: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    def _choose(self, route: Route, workload: str, pinned: str | None) -> tuple[Choice, str]:
        """The version that answers, and the model name the backend knows it by."""
        if self.router is not None and self.host is not None and route.model == self.router.served:
            choice = self.router.choose(workload, pinned)
            return choice, self.host.backend_model(choice.version)
        base = f"{route.model}@{BASE_VERSION}"
        if pinned and pinned != base:
            raise ModelNotFound(f"model version {pinned!r} is not served; served: {base}")
        return Choice(base, 1.0), route.backend_model

    async def open(
        self, request: GenerationRequest, *, api: str, headers: Mapping[str, str] | None = None
    ) -> Exchange:
        """`headers`: the client's HTTP headers (workload override, user agent)."""
        if self.closing:
            raise ShuttingDown("the gateway is stopping; send the request again once it is back")
        headers = headers or {}
        exchange = await self._open(request, api=api, headers=headers)
        checkable = request.tools_active or request.json_schema is not None
        if not checkable or exchange.route.pinned or headers.get(PIN_HEADER):
            return exchange  # nothing to check, or a version asked for by name: as it is
        self._maybe_shadow(request, exchange, api, headers)
        if self.fallback is None:
            return exchange
        answer = await exchange.buffer()
        problem = answer_problem(exchange.request, answer)
        target = self._fallback_target(exchange) if problem else None
        if target is None:
            return exchange
        model, pinned = target
        again = request.model_copy(update={"model": model})
        try:
            second = await self._open(
                again, api=api, headers=headers, pinned=pinned, fallback_of=exchange.interaction_id
            )
        except LoragateError as exc:  # the fallback can't answer: the client gets the first
            log.warning("fallback to %s failed (%s): serving the unchecked answer", model,
                        exc.message)  # fmt: skip
            return exchange
        await exchange.discard("retried")
        return second

    def _fallback_target(self, exchange: Exchange) -> tuple[str, str | None] | None:
        """(model, version pin) to answer again with, or None when there is nothing else."""
        if self.fallback != "next":
            return (self.fallback, None) if self.fallback else None
        if self.router is None or exchange.route.model != self.router.served:
            return None
        other = self.router.other_version(exchange.workload, exchange.version)
        return (exchange.model_requested, other) if other else None

    def _maybe_shadow(
        self, request: GenerationRequest, served: Exchange, api: str, headers: Mapping[str, str]
    ) -> None:
        """With `shadow_share`, the lane's candidate answers too, in the background."""
        if self.router is None or self._random.random() >= self.shadow_share:
            return
        lane = self.router.lane(served.workload)
        if lane is None or lane.candidate is None or served.version != lane.active:
            return

        async def shadow() -> None:
            try:
                exchange = await self._open(request, api=api, headers=headers,
                                            pinned=lane.candidate, kind="shadow")  # fmt: skip
                await exchange.collect()
            except LoragateError as exc:  # recorded with its error when it got that far
                log.debug("shadow answer by %s failed: %s", lane.candidate, exc.message)
            except Exception:
                log.exception("shadow answer by %s failed", lane.candidate)

        task = asyncio.create_task(shadow())
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _open(
        self,
        request: GenerationRequest,
        *,
        api: str,
        headers: Mapping[str, str],
        pinned: str | None = None,
        kind: str = "served",
        fallback_of: str | None = None,
    ) -> Exchange:
        started = time.perf_counter()
        route = await self.catalog.resolve(request.model)
        requested = request.model
        workload = identify(
            request, header=headers.get(WORKLOAD_HEADER), alias=route.workload, api=api
        )
        choice, backend_model = self._choose(
            route, workload, pinned or route.pinned or headers.get(PIN_HEADER)
        )
        request = request.model_copy(update={"model": backend_model})
        labels = (api, workload, choice.version)
        events = self.backend.generate(request)
        self.metrics.queue_depth.labels(choice.version).set(self.backend.queue_depth())
        exchange = Exchange(
            interaction_id=new_interaction_id(),
            route=route,
            version=choice.version,
            propensity=choice.propensity,
            workload=workload,
            api=api,
            started=started,
            ttft=0.0,
            request=request,
            model_requested=requested,
            client=headers.get("user-agent"),
            _first=None,
            _events=events,
            _metrics=self.metrics,
            _recorder=self.recorder,
            kind=kind,
            fallback_of=fallback_of,
        )
        try:
            exchange._first = await anext(events, None)
        except BaseException as exc:
            await events.aclose()
            if isinstance(exc, LoragateError):
                self.metrics.errors.labels(*labels, exc.type).inc()
                self.metrics.requests.labels(*labels, "error").inc()
            elif isinstance(exc, asyncio.CancelledError):  # the client left while prefilling
                exchange.settle()
            raise
        exchange.ttft = time.perf_counter() - started
        self.metrics.ttft.labels(*labels).observe(exchange.ttft)
        return exchange


async def _replay(
    events: list[Event], failure: LoragateError | None
) -> AsyncGenerator[Event, None]:
    for event in events:
        yield event
    if failure is not None:
        raise failure


async def _chain(
    first: Event | None, rest: AsyncGenerator[Event, None]
) -> AsyncGenerator[Event, None]:
    if first is not None:
        yield first
    async for event in rest:
        yield event


def new_interaction_id() -> str:
    return "ia_" + uuid.uuid4().hex
