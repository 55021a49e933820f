"""A conversation as Ollama hands it to a Modelfile TEMPLATE, so that the Jinja template the
gateway serves and trains with renders the same bytes as its Go twin in `modelfiles/`.

Ollama (template/template.go) joins every system message into `.System`, merges a message into
the one before it when both have the same role (tool results excepted), decodes tools into its
own structs (fixed field order, unknown schema keywords dropped, top-level properties as a Go
map) and prints JSON with Go's `json.Marshal`: compact, map keys sorted, `<`, `>` and `&`
escaped, numbers as float64. `prepare` does the same to OpenAI-shaped messages and tools, and
hands tools and tool-call arguments to the template as finished JSON text.

One deliberate difference: when assistant turns merge, Ollama keeps only the first one's tool
calls; here all of them are kept, since dropping calls would lose training data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.prompts.toolcalls import parameter_schemas

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                 "\u2029": "\\u2029"}  # fmt: skip


class Struct(dict):
    """A JSON object that Go writes from a struct: keys stay in the order given (a plain dict
    is a Go map, written with sorted keys)."""


def go_json(value: Any) -> str:
    """`value` as Go's `json.Marshal` writes it after decoding it into `any`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return _go_number(float(value))
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return "".join(_HTML_ESCAPES.get(char, char) for char in text)
    if isinstance(value, Struct):
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Mapping):
        pairs = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in pairs) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON")


def _go_number(number: float) -> str:
    """Go's float64 format: plain decimals from 1e-6 up to 1e21, else exponent with no
    zero padding (`1e-7`, `1e+21`); both take the shortest digits that read back exactly."""
    if not math.isfinite(number):
        raise ValueError(f"{number} is not valid JSON")
    if number == 0:
        return "0"
    if 1e-6 <= abs(number) < 1e21:
        return format(Decimal(repr(number)), "f").removesuffix(".0")
    mantissa, exponent = repr(number).split("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    return f"{mantissa.removesuffix('.0')}e{sign}{digits}"


def template_tool(tool: Mapping[str, Any]) -> Struct:
    """An OpenAI function tool in the shape of Ollama's `templateTool`."""
    function = tool.get("function") or {}
    parameters = function.get("parameters") or {}
    params = Struct(type=parameters.get("type", ""))
    _put_if_given(params, "$defs", parameters)
    _put_if_given(params, "items", parameters)
    if parameters.get("required"):
        params["required"] = list(parameters["required"])
    properties = parameters.get("properties")
    params["properties"] = (
        None if properties is None else {k: _property(v) for k, v in properties.items()}
    )
    out = Struct(type=tool.get("type", ""))
    _put_if_given(out, "items", tool)
    out["function"] = Struct(
        name=function.get("name", ""),
        description=function.get("description", ""),
        parameters=params,
    )
    return out


def _property(schema: Mapping[str, Any]) -> Struct:
    """One property as Ollama's `ToolProperty` keeps it: seven keywords, empty ones left out,
    nested properties in the client's order."""
    out = Struct()
    if schema.get("anyOf"):
        out["anyOf"] = [_property(s) for s in schema["anyOf"]]
    kind = schema.get("type")
    if kind:
        out["type"] = kind[0] if isinstance(kind, list) and len(kind) == 1 else kind
    _put_if_given(out, "items", schema)
    if schema.get("description"):
        out["description"] = schema["description"]
    if schema.get("enum"):
        out["enum"] = list(schema["enum"])
    if schema.get("properties") is not None:
        out["properties"] = Struct((k, _property(v)) for k, v in schema["properties"].items())
    if schema.get("required"):
        out["required"] = list(schema["required"])
    return out


def _put_if_given(target: Struct, key: str, source: Mapping[str, Any]) -> None:
    if source.get(key) is not None:  # Go's omitempty on `any`: left out only when null
        target[key] = source[key]


def arguments_json(arguments: Any, schema: Any = None) -> str:
    """Tool-call arguments as Ollama prints them (or, given the tool's parameters `schema`,
    in its order: `in_schema_order`); OpenAI sends them as JSON text. Text that is not a JSON
    object stays as it is (Ollama would refuse it)."""
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
        if not isinstance(decoded, dict):
            return arguments
        arguments = decoded
    return go_json(in_schema_order(arguments, schema))


def collate(messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Messages as Ollama's template sees them: all system text joined into one leading system
    message (none when it is empty), same-role neighbours merged. Also returns, for each
    message given back, the indices of the messages it came from."""
    merged: list[dict[str, Any]] = []
    sources: list[list[int]] = []
    for index, message in enumerate(messages):
        role = message.get("role", "")
        content = message.get("content") or ""
        if merged and merged[-1]["role"] == role and role != "tool":
            last = merged[-1]
            last["content"] = f"{last.get('content') or ''}\n\n{content}"
            if message.get("tool_calls"):
                last["tool_calls"] = [*last.get("tool_calls", []), *message["tool_calls"]]
            sources[-1].append(index)
        else:
            merged.append({**message, "content": content})
            sources.append([index])
    pairs = list(zip(merged, sources, strict=True))
    system = "\n\n".join(m["content"] for m, _ in pairs if m["role"] == "system")
    out: list[dict[str, Any]] = []
    out_sources: list[list[int]] = []
    if system:
        out.append({"role": "system", "content": system})
        out_sources.append([i for m, source in pairs if m["role"] == "system" for i in source])
    for message, source in pairs:
        if message["role"] != "system":
            out.append(_with_canonical_calls(message))
            out_sources.append(source)
    return out, out_sources


def _with_canonical_calls(
    message: dict[str, Any], schemas: Mapping[str | None, Any] | None = None
) -> dict[str, Any]:
    """`message` with its calls' arguments as Ollama prints them, or in the order of the
    parameters `schemas` give by tool name."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    canonical = []
    for call in calls:
        function = call.get("function", call)
        schema = (schemas or {}).get(function.get("name"))
        arguments = arguments_json(function.get("arguments"), schema)
        canonical.append({**call, "function": {**function, "arguments": arguments}})
    return {**message, "tool_calls": canonical}


def prepare(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None,
    written: Collection[int] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[list[int]]]:  # fmt: skip
    """Messages, tools and each message's sources, ready for the template. A tool becomes
    `{"ollama_json": text}` (transformers takes tools only as dicts). The calls of the
    messages at `written` (turns a model is trained to write) get their arguments in the
    order the call grammar holds a model to, the tool schema's (`in_schema_order`); all
    others are printed as Ollama reprints them."""
    collated, sources = collate(messages)
    if written:
        schemas, trained = parameter_schemas(tools), set(written)
        collated = [_with_canonical_calls(m, schemas) if trained.intersection(source) else m
                    for m, source in zip(collated, sources, strict=True)]  # fmt: skip
    prepared = [{"ollama_json": go_json(template_tool(t))} for t in tools] if tools else None
    return collated, prepared, sources


def in_schema_order(value: Any, schema: Any) -> Any:
    """`value` with each object that `schema` gives `properties` for as a `Struct` whose keys
    follow them (keys it does not name come after, sorted): a model writes a call's arguments
    in the order a request names them (`file_path`, `old_string`, `new_string`) more surely
    than sorted, where the new text comes before the old."""
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, Mapping) and isinstance(schema.get("properties"), Mapping):
        named = schema["properties"]
        keys = [k for k in named if k in value] + sorted(k for k in value if k not in named)
        return Struct((k, in_schema_order(value[k], named.get(k))) for k in keys)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [in_schema_order(item, schema["items"]) for item in value]
    return value
