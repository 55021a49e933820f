"""What the recorder is handed on the request path, and how it becomes rows.

The request path builds an `InteractionRecord` or `FeedbackRecord` (references only, no
serialization). `prepare` runs on the writer's thread: it serializes, redacts secrets, derives
the conversation, judges what can be judged at once (tool arguments against their schemas, a
`json_schema` response against its schema, the results of earlier tool calls sent back in this
turn, a Jac MTLLM answer against its declared type) and returns an item `Store.write` takes.
Items are plain JSON, so the journal holds them too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.generation import Assembled, GenerationRequest, Message
from gateway.prompts import mtllm
from gateway.prompts.schemas import violation
from gateway.prompts.toolcalls import parameter_schemas
from gateway.recording.redact import redact
from gateway.store.rows import CorrectionRow, LineRow, OutcomeRow, Prepared, ToolResultRow

# A tool result that reports a failure (Continue answers an unknown tool with "Tool X not found").
_FAILED_TOOL = re.compile(
    r"(?i)(\btool \S+ not found\b|^error\b|\berror:|traceback \(most recent call last\)|"
    r"\bexit (?:code|status):? ?[1-9]|\bcommand failed\b|\bpermission denied\b|"
    r"no such file or directory)"
)


@dataclass
class InteractionRecord:
    id: str
    created_at: float
    api: str
    workload: str
    model_requested: str
    version: str
    request: GenerationRequest
    answer: Assembled
    status: str  # complete | aborted | error
    error: str | None = None
    client: str | None = None
    propensity: float = 1.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    kind: str = "served"  # served | retried | shadow (migration 0006)
    fallback_of: str | None = None


@dataclass
class FeedbackRecord:
    interaction_id: str
    created_at: float
    accepted: bool | None = None
    score: float | None = None
    comment: str | None = None
    correction: str | None = None
    source: str = "feedback"


@dataclass
class DevDataRecord:
    """One Continue dev-data event (`name`: autocomplete, editOutcome, toolUsage, chatFeedback),
    posted to `/devdata` or read from a file by a collector (`line`: which line, so that it is
    taken once; a corrupt line comes with an empty `name`)."""

    name: str
    data: dict[str, Any]
    created_at: float
    line: LineRow | None = None


DEVDATA_EVENTS = ("autocomplete", "editOutcome", "toolUsage", "chatFeedback")
_MATCH_WINDOW = 3600.0  # an event judges an answer given at most this long before it


def prepare(record: InteractionRecord | FeedbackRecord | DevDataRecord) -> Prepared:
    if isinstance(record, FeedbackRecord):
        return _prepare_feedback(record)
    if isinstance(record, DevDataRecord):
        return _prepare_devdata(record)
    return _prepare_interaction(record)


_PATH_LIKE = re.compile(r"[\w.~-]*(?:/[\w.@+-]+)+|[\w-]+\.[A-Za-z0-9]{1,8}\b")


def mentions_path(record: InteractionRecord, globs: tuple[str, ...]) -> bool:
    """Whether a file path matching one of `globs` appears in the request or the tool calls."""
    texts = [m.get("content") or "" for m in record.request.messages or []]
    texts += [record.request.prompt or ""] + [c.arguments for c in record.answer.calls]
    for text in texts:
        for candidate in _PATH_LIKE.findall(text):
            if any(fnmatch.fnmatch(candidate, glob) for glob in globs):
                return True
    return False


def conversation_id(request: GenerationRequest) -> str | None:
    """Turns of one conversation share their beginning: the system prompt and the first user
    message. Agents resend both on every turn."""
    messages = request.messages
    if not messages:
        return None
    head = [m for m in messages if m["role"] == "system"][:1]
    head += [m for m in messages if m["role"] == "user"][:1]
    key = "\x00".join(f"{m['role']}\x01{m.get('content') or ''}" for m in head)
    return "cv_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def context_hash(request: GenerationRequest) -> str | None:
    """What a user turn was asked in. Two requests with the same context are the same question
    asked again: later in a conversation, everything before the last user message (so a
    rephrased last turn counts); in a first turn, the whole request (only a resend counts: a
    new first question with the same system prompt is a new conversation)."""
    if request.messages is None:
        return _prompt_context(request)
    messages = request.messages
    if not messages or messages[-1]["role"] != "user":
        return None  # tool results or an assistant prefill continue a turn, they don't re-ask
    later_turn = any(m["role"] == "assistant" for m in messages)
    asked_in = messages[:-1] if later_turn else messages
    context = json.dumps(
        [request.model, asked_in, request.tools], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(context.encode()).hexdigest()[:32]


def _prompt_context(request: GenerationRequest) -> str | None:
    """A templated prompt (`/api/generate` with `system`, as JESSY sends it) is a whole
    question: the same one sent again, letter case, spacing and end punctuation aside, is a
    re-ask. Raw and fill-in-the-middle prompts are not questions."""
    if request.raw or request.suffix is not None or not request.prompt:
        return None
    asked = " ".join(request.prompt.lower().split()).rstrip("?!. ")
    context = json.dumps([request.model, request.system, asked], ensure_ascii=False)
    return hashlib.sha256(context.encode()).hexdigest()[:32]


def _request_json(request: GenerationRequest) -> str:
    return request.model_dump_json(exclude_none=True, exclude_defaults=True)


def _prepare_interaction(r: InteractionRecord) -> Prepared:
    request_text, n_request = redact(_request_json(r.request))
    response_text, n_response = redact(r.answer.text)
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in r.answer.calls]
    calls_text, n_calls = redact(json.dumps(calls, ensure_ascii=False)) if calls else (None, 0)
    finish = r.answer.finish
    row = {
        "id": r.id, "created_at": r.created_at, "api": r.api, "client": r.client,
        "workload": r.workload, "model_requested": r.model_requested, "version": r.version,
        "propensity": r.propensity, "conversation_id": conversation_id(r.request),
        "request": request_text, "response_text": response_text, "tool_calls": calls_text,
        "finish_reason": finish.reason if finish else None, "status": r.status, "error": r.error,
        "prompt_tokens": finish.prompt_tokens if finish else 0,
        "completion_tokens": finish.completion_tokens if finish else 0,
        "cached_tokens": finish.cached_tokens if finish else 0,
        "latency_ms": r.latency_ms, "ttft_ms": r.ttft_ms,
        "redactions": n_request + n_response + n_calls,
        # a shadow answer is not a turn the user took: it must not look like a re-ask
        "context_hash": context_hash(r.request) if r.kind != "shadow" else None,
        "kind": r.kind, "fallback_of": r.fallback_of,
    }  # fmt: skip
    asked = _mtllm_call(r)
    outcomes = _judged_at_once(r, asked)
    return {
        "interaction": row,
        "tool_calls": [[c.id, r.id, c.name] for c in r.answer.calls if c.id],
        "outcomes": outcomes,
        "tool_results": _tool_results(r.request, r.created_at),
        **_mtllm_retry(r, asked, outcomes),
    }


def _outcome(
    r: InteractionRecord, kind: str, ok: bool, source: str, detail: str = ""
) -> OutcomeRow:
    return {"interaction_id": r.id, "kind": kind, "value": 1.0 if ok else 0.0, "source": source,
            "detail": detail, "created_at": r.created_at}  # fmt: skip


def _judged_at_once(r: InteractionRecord, asked: mtllm.MtllmCall | None) -> list[OutcomeRow]:
    """`asked`: the MTLLM call the request makes (`_mtllm_call`), read once per record."""
    if r.status != "complete":
        return []
    outcomes = []
    schemas = parameter_schemas(r.request.tools)
    for call in r.answer.calls:
        problem = _call_problem(call.name, call.arguments, schemas)
        outcomes.append(
            _outcome(
                r,
                "tool_call_valid",
                problem is None,
                "schema",
                call.id if problem is None else f"{call.id}: {problem}",
            )
        )
    if r.request.json_schema is not None:
        problem = _json_problem(r.answer.text, r.request.json_schema)
        outcomes.append(_outcome(r, "schema_valid", problem is None, "schema", problem or ""))
    if asked is not None and asked.kind != "check":
        problem = asked.problem(r.answer.text)
        outcomes.append(_outcome(r, "type_valid", problem is None, "mtllm", problem or ""))
    return outcomes


def _mtllm_call(r: InteractionRecord) -> mtllm.MtllmCall | None:
    if r.workload != mtllm.WORKLOAD or r.request.tools or r.request.json_schema is not None:
        return None
    return mtllm.read_call(r.request)


def _mtllm_retry(
    r: InteractionRecord, call: mtllm.MtllmCall | None, outcomes: list[OutcomeRow]
) -> Prepared:
    """MTLLM asks again when it cannot use an answer (a fix or extract quoting it): that answer
    was re-asked, and the value that finally has the declared type (judged in `outcomes`)
    corrects every answer before it in the chain (an ask as `[Output] <value>`, a follow-up as
    the value)."""
    if r.status != "complete" or call is None or call.kind not in ("fix", "extract"):
        return {}
    found: Prepared = {}
    if call.previous:
        key = redact(call.previous)[0]
        found["matched"] = [{
            "by": "output", "pattern": "%" + _like_escaped(key) + "%", "kind": "reasked",
            "value": 0.0, "source": "mtllm", "detail": r.id, "created_at": r.created_at,
            "since": r.created_at - _MATCH_WINDOW, "until": r.created_at,
        }]  # fmt: skip
    value = call.value_of(r.answer.text)
    typed = any(o["kind"] == "type_valid" and o["value"] == 1.0 for o in outcomes)
    if value and typed:
        value = redact(value)[0]
        found["settled"] = [{"id": r.id, "value": value, "answer": f"[Output] {value}",
                             "created_at": r.created_at}]  # fmt: skip
    return found


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def answer_problem(request: GenerationRequest, answer: Assembled) -> str | None:
    """What an automatic check finds wrong with the answer (a tool call whose arguments don't
    validate, output that doesn't satisfy the response schema), or None."""
    record = InteractionRecord(
        id="", created_at=0.0, api="", workload="", model_requested="", version="",
        request=request, answer=answer, status="complete",
    )  # fmt: skip
    failed = [o for o in _judged_at_once(record, _mtllm_call(record)) if o["value"] == 0.0]
    return failed[0]["detail"] if failed else None


def _call_problem(name: str, arguments: str, schemas: Mapping[str | None, Any]) -> str | None:
    if name not in schemas:
        return f"unknown tool {name!r}"
    return _json_problem(arguments, schemas[name])


def _json_problem(text: str, schema: dict[str, Any]) -> str | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg}"
    why = violation(value, schema)  # a broken schema judges nothing
    return None if why is None else f"invalid: {why}"


def _tool_results(request: GenerationRequest, created_at: float) -> list[ToolResultRow]:
    """Tool results sent in this turn judge the calls that asked for them."""
    results: list[ToolResultRow] = []
    for message in _newest_tool_messages(request.messages or []):
        call_id = message.get("tool_call_id")
        if call_id:
            failed = bool(_FAILED_TOOL.search(message.get("content") or ""))
            results.append(
                {"call_id": call_id, "value": 0.0 if failed else 1.0, "created_at": created_at}
            )
    return results


def _newest_tool_messages(messages: list[Message]) -> list[Message]:
    tail = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        tail.append(message)
    return tail


def _prepare_feedback(f: FeedbackRecord) -> Prepared:
    def outcome(kind: str, value: float, detail: str = "") -> OutcomeRow:
        return {"interaction_id": f.interaction_id, "kind": kind, "value": value,
                "source": f.source, "detail": detail, "created_at": f.created_at}  # fmt: skip

    outcomes = []
    if f.accepted is not None:
        outcomes.append(outcome("accepted", 1.0 if f.accepted else 0.0))
    if f.score is not None:
        outcomes.append(outcome("score", f.score))
    if f.comment:
        outcomes.append(outcome("comment", 0.0, redact(f.comment)[0]))
    corrections: list[CorrectionRow] = []
    if f.correction is not None:
        content = redact(f.correction)[0]
        corrections.append({"interaction_id": f.interaction_id, "source": f.source,
                            "created_at": f.created_at, "content": content})  # fmt: skip
    return {"outcomes": outcomes, "corrections": corrections}


def _prepare_devdata(r: DevDataRecord) -> Prepared:
    matched = _devdata_matches(r) if r.name in DEVDATA_EVENTS else []
    if r.line is None:
        return {"matched": matched}
    status = r.line["status"] if r.line["status"] == "corrupt" else (
        "unmatched" if matched else "ignored")  # fmt: skip
    return {"matched": matched, "lines": [{**r.line, "status": status}]}


def _devdata_matches(r: DevDataRecord) -> list[dict[str, Any]]:
    """The outcomes (and correction) one event implies, with how to find its interaction."""
    d = r.data
    base = {"source": f"continue.{r.name}", "detail": "", "created_at": r.created_at,
            "since": r.created_at - _MATCH_WINDOW, "until": r.created_at + 1.0}  # fmt: skip
    if r.name == "toolUsage":
        if not d.get("toolCallId"):
            return []
        found = {"by": "call", "key": d["toolCallId"], **base}
        events = []
        if isinstance(d.get("accepted"), bool):
            events.append({**found, "kind": "accepted", "value": float(d["accepted"])})
        succeeded = d.get("succeeded")
        if not isinstance(succeeded, bool) and isinstance(d.get("output"), str | list):
            succeeded = not _FAILED_TOOL.search(json.dumps(d["output"]))
        if isinstance(succeeded, bool):
            events.append({**found, "kind": "tool_result", "value": float(succeeded)})
        return events
    completion = d.get("completion")
    if not isinstance(completion, str) or not completion:
        return []  # the noCode variants carry no text to match by
    found = {"by": "text", "key": completion, **base}
    if r.name == "chatFeedback" and isinstance(d.get("feedback"), bool):
        return [{**found, "kind": "accepted", "value": float(d["feedback"])}]
    if not isinstance(d.get("accepted"), bool):
        return []
    event = {**found, "kind": "accepted", "value": float(d["accepted"])}
    new_code = d.get("newCode")
    if r.name == "editOutcome" and isinstance(new_code, str) and new_code != completion:
        event["correction"] = redact(new_code)[0]
    return [event]
