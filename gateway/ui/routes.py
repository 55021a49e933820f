"""`/ui`: the dashboard, server-rendered, with no asset from outside the package.

Pages: workloads (versions, traffic, live reward, retrain/promote/rollback), interactions
(filtered list and one conversation), the review queue (accept, reject or correct; saved as
structured feedback, so the next `dataset build` trains on it), training and evaluation.

A change (retrain, promote, rollback, a verdict) is a POST that must come from the dashboard
itself: its `Origin` must be the gateway's own address. The API key, when one is set, is
checked by `gateway.api.middleware` (header or the cookie `/ui/login` sets).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel

from gateway.api.feedback import CorrectionMessage, Feedback, record_feedback
from gateway.api.middleware import UI_COOKIE, ui_token
from gateway.errors import BadRequest, Forbidden, InteractionNotFound, LoragateError
from gateway.ui import charts, queries
from gateway.ui.dashboard import Dashboard
from gateway.versions.live import policy_of
from gateway.versions.ollama_tags import deployer_of
from gateway.versions.overview import status
from gateway.versions.router import ALL

if TYPE_CHECKING:
    from gateway.versions.registry import Registry


def same_origin(request: Request) -> None:
    """A change (any POST) must come from the dashboard's own pages: another page on this
    machine (a loopback origin the API allows) must not roll a model back or write training
    data."""
    if request.method == "GET":
        return
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is None or urlsplit(origin).netloc.lower() != host.lower():
        raise Forbidden(
            "the dashboard's actions are taken from its own pages only",
            code="forbidden_origin",
        )


router = APIRouter(include_in_schema=False, dependencies=[Depends(same_origin)])
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
HOUR = 3600.0
WEEK = 7 * 86400.0
_STATIC = {"ui.css": "text/css", "ui.js": "text/javascript", "review.js": "text/javascript"}


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _script_json(value: Any) -> Markup:
    """JSON for a `<script type="application/json">` block: `</script>` cannot end it early."""
    text = json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


templates.env.filters.update(when=_when, pretty=_pretty, script_json=_script_json)


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


def page(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"page": name.split(".")[0], **context})


# --- workloads -----------------------------------------------------------------------------


@router.get("/ui", response_class=HTMLResponse)
async def workloads_page(request: Request) -> HTMLResponse:
    ui = dashboard_of(request)
    return page(request, "workloads.html", await asyncio.to_thread(_workloads, ui))


def _workloads(ui: Dashboard) -> dict[str, Any]:
    now = time.time()
    store = ui.store()
    context: dict[str, Any] = {"queue": queries.queue_size(store, now - WEEK),
                               "cap": queries.QUEUE_CAP}  # fmt: skip
    traffic = queries.traffic(store, now - WEEK, HOUR)
    window = (now - WEEK, now + HOUR)
    if ui.versions is None:
        figures = charts.lane_traffic(traffic, [ALL], window, HOUR)
        context.update(report=None, versions=[], figures=figures)
        return context
    registry = ui.versions.registry()
    report = status(registry, ui.versions.base, policy_of(ui.settings), ui.settings)
    lanes = [lane["workload"] for lane in report["lanes"]]
    context.update(
        report=report,
        versions=registry.versions(ui.versions.base),
        figures=charts.lane_traffic(traffic, lanes, window, HOUR),
        retrain=_retrain_state(ui),
    )
    return context


def _retrain_state(ui: Dashboard) -> dict[str, Any]:
    if ui.versions is None:
        return {"available": False}
    retrainer = ui.versions.retrainer
    return {"available": True, "running": retrainer.running, "returncode": retrainer.returncode,
            "started_at": retrainer.started_at, "reason": retrainer.reason,
            "log": retrainer.progress()}  # fmt: skip


class VersionAction(BaseModel):
    version: str | None = None
    workload: str = ALL


@router.get("/ui/actions/retrain")
async def retrain_state(request: Request) -> dict[str, Any]:
    return _retrain_state(dashboard_of(request))


@router.post("/ui/actions/retrain")
async def retrain(request: Request) -> dict[str, Any]:
    ui = dashboard_of(request)
    if ui.versions is None:
        raise BadRequest("retraining needs model versions (the embedded engine or train_base)")
    started = await ui.versions.retrainer.start("asked from the dashboard")
    return {"started": started, **_retrain_state(ui)}


@router.post("/ui/actions/promote")
async def promote(body: VersionAction, request: Request) -> dict[str, str]:
    name = body.version
    if not name:
        raise BadRequest("promote needs a version", param="version")

    def change(registry: Registry, base: str) -> str:
        registry.promote(name, body.workload, reason="promoted from the dashboard")
        return f"{name} is active for {body.workload}"

    return {"message": await _change_versions(request, change)}


@router.post("/ui/actions/rollback")
async def rollback(body: VersionAction, request: Request) -> dict[str, str]:

    def change(registry: Registry, base: str) -> str:
        return registry.rollback(base, body.workload, to=body.version)

    return {"message": await _change_versions(request, change)}


async def _change_versions(request: Request, change: Callable[[Registry, str], str]) -> str:
    """Change the registry as `loragate models promote` / `rollback` do (the serving gateway
    follows it), then bring an Ollama deployment in step when one is configured."""
    ui = dashboard_of(request)
    if ui.versions is None:
        raise BadRequest("model versions need the embedded engine or train_base")
    versions = ui.versions

    def run() -> str:
        registry = versions.registry()
        message = change(registry, versions.base)
        ollama = deployer_of(ui.settings, versions.base)
        if ollama is not None:
            try:
                for line in ollama.sync(registry, versions.base):
                    message += f"; {line}"
            except LoragateError as exc:
                message += f"; Ollama not updated: {exc.message}"
        return message

    return await asyncio.to_thread(run)


# --- interactions --------------------------------------------------------------------------


@router.get("/ui/interactions", response_class=HTMLResponse)
async def interactions_page(
    request: Request,
    workload: str = "",
    version: str = "",
    outcome: str = "",
    client: str = "",
    since: str = "",
    before: str = "",
) -> HTMLResponse:
    filters = queries.Filters(workload, version, outcome, client, since, before)
    ui = dashboard_of(request)

    def read() -> dict[str, Any]:
        store = ui.store()
        rows = queries.interactions(store, filters)
        return {
            "rows": rows, "filters": filters,
            "choices": {c: queries.choices(store, c) for c in ("workload", "version", "client")},
            "outcomes": list(queries.OUTCOME_FILTERS), "periods": list(queries.SINCE),
            "next": queries.cursor(rows[-1].created_at, rows[-1].id)
            if len(rows) == queries.PAGE else None,
        }  # fmt: skip

    return page(request, "interactions.html", await asyncio.to_thread(read))


@router.get("/ui/interactions/{iid}", response_class=HTMLResponse)
async def interaction_page(iid: str, request: Request) -> HTMLResponse:
    item = await _interaction(request, iid)
    return page(request, "interaction.html", {"item": item})


async def _interaction(request: Request, iid: str) -> dict[str, Any]:
    ui = dashboard_of(request)
    item = await asyncio.to_thread(lambda: queries.interaction(ui.store(), iid))
    if item is None:
        raise InteractionNotFound(f"no recorded interaction {iid!r}")
    return item


# --- review queue --------------------------------------------------------------------------


@router.get("/ui/review", response_class=HTMLResponse)
async def review_page(request: Request, id: str = "", after: str = "") -> HTMLResponse:
    """The next answer in the queue, or the one `id` names (skipping it walks the queue on
    from its time)."""
    ui = dashboard_of(request)
    if id:
        reason, walk = "asked for by id", "failed"
    else:
        found = await asyncio.to_thread(lambda: queries.next_for_review(ui.store(), after))
        if found is None:
            return page(request, "review.html", {"item": None, "after": after})
        id, reason = found
        walk = reason
    item = await _interaction(request, id)
    skip = queries.review_cursor(walk, item["created_at"], item["id"])
    return page(request, "review.html", {"item": item, "reason": reason, "skip": skip})


class Verdict(BaseModel):
    verdict: Literal["accept", "reject", "correct"]
    correction: str | CorrectionMessage | None = None


@router.post("/ui/review/{iid}")
async def review(iid: str, body: Verdict, request: Request) -> dict[str, str]:
    """Saved as `/v1/feedback` saves feedback (source `review`), and written before the
    answer returns: the queue's next item and the next dataset see it."""
    if body.verdict == "correct" and body.correction is None:
        raise BadRequest("a correction needs the wanted answer", param="correction")
    feedback = Feedback(
        interaction_id=iid,
        accepted=body.verdict == "accept",
        correction=body.correction if body.verdict == "correct" else None,
    )
    recorder = dashboard_of(request).recorder
    await record_feedback(recorder, feedback, source=queries.REVIEW_SOURCE)
    await recorder.flush()
    return {"status": "recorded", "interaction_id": iid}


# --- training and evaluation ---------------------------------------------------------------


@router.get("/ui/training", response_class=HTMLResponse)
async def training_page(request: Request) -> HTMLResponse:
    ui = dashboard_of(request)

    def read() -> dict[str, Any]:
        store = ui.store()
        runs = queries.training_runs(store)
        manifests = {}
        for run in runs:
            path = ui.settings.home / "datasets" / run["dataset_hash"] / "manifest.json"
            if run["dataset_hash"] not in manifests and path.exists():
                manifests[run["dataset_hash"]] = json.loads(path.read_text(encoding="utf-8"))
        evals = queries.eval_runs(store)
        gates = {}
        if ui.versions is not None:
            gates = {v.name: v.metrics.get("gate") for v in
                     ui.versions.registry().versions(ui.versions.base)}  # fmt: skip
        suites = sorted({e["suite"] for e in evals})
        table: dict[str, dict[str, Any]] = {}
        for e in sorted(evals, key=lambda e: e["version"]):
            table.setdefault(e["version"], {})[e["suite"]] = e
        return {"runs": runs, "manifests": manifests, "loss": charts.loss_curves(runs),
                "suites": suites, "evals": table, "gates": gates}  # fmt: skip

    return page(request, "training.html", await asyncio.to_thread(read))


# --- login and assets ----------------------------------------------------------------------


@router.get("/ui/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/ui") -> HTMLResponse:
    return page(request, "login.html", {"next": _local(next), "error": None})


@router.post("/ui/login", response_model=None)
async def login(request: Request) -> HTMLResponse | RedirectResponse:
    """The login form's post (`application/x-www-form-urlencoded`: key, next)."""
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key, next = form.get("key", [""])[0], form.get("next", ["/ui"])[0]
    expected = dashboard_of(request).settings.api_key
    if expected is None or not hmac.compare_digest(key, expected):
        context = {"next": _local(next), "error": "That is not this gateway's API key."}
        refused = page(request, "login.html", context)
        refused.status_code = 401
        return refused
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(UI_COOKIE, ui_token(expected), httponly=True, samesite="strict",
                        path="/ui")  # fmt: skip
    return response


def _local(target: str) -> str:
    """Only a dashboard path: a login must not send the browser elsewhere."""
    return target if target.startswith("/ui") and "//" not in target else "/ui"


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    if name == "plotly.min.js":
        bundled = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
        return FileResponse(str(bundled), media_type="text/javascript", headers=_CACHED)
    if name not in _STATIC:
        return JSONResponse({"error": {"message": f"no asset {name!r}"}}, status_code=404)
    return FileResponse(HERE / "static" / name, media_type=_STATIC[name], headers=_CACHED)


_CACHED = {"Cache-Control": "max-age=3600"}
