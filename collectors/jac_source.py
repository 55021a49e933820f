"""Jac sources read for their `by llm()` abilities, the calls made to them, and the prompt
MTLLM 0.3 sends for each call.

Jac's syntax is close enough to Python's that Python's tokenizer reads it (braces and
semicolons are operators; `#* ... *#` comments are removed first). From the tokens come the
module's `obj`/`node`/`edge`/`class` archetypes (fields with semstrings and types), `enum`s,
`glob`s with literal values, and abilities declared `-> Type by llm(...)`. Every call to such an
ability whose arguments are literals (strings, numbers, lists, dicts, objects of the module's
archetypes, enum members) is a call site; `check f(...) == value;` in a `test` gives the value
it should return. `render` writes the prompt as MTLLM does (`mtllm.aott.aott_raise` with the
`OpenAI` model's Normal method); the tests compare it with what MTLLM sent. MTLLM lists the
types an object's fields use from a `set`, so with two or more their order varies between its
own runs; `render` lists them in field order.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

_ARCHETYPES = {"obj", "node", "edge", "class"}
_BLOCK_COMMENT = re.compile(r"#\*.*?\*#", re.DOTALL)
_PRIMARY = {"str", "int", "float", "bool", "list", "dict", "tuple", "set", "Any", "None"}
_NON_PRIMARY = re.compile(r"(?:\[|,\s*|\|)([a-zA-Z_][a-zA-Z0-9_]*)|([a-zA-Z_][a-zA-Z0-9_]*)")

SYSTEM_PROMPT = """
[System Prompt]
This is an operation you must perform and return the output values. Neither, the methodology, extra sentences nor the code are not needed.
Input/Type formatting: Explanation of the Input (variable_name) (type) = value
"""  # noqa: E501
PROMPT = """
[Information]
{information}

[Context]
{context}

[Inputs Information]
{inputs_information}

[Output Information]
{output_information}

[Type Explanations]
{type_explanations}

[Action]
{action}
"""
NORMAL_SUFFIX = """Generate and return the output result(s) only, adhering to the provided Type in the following format

[Output] <result>
"""  # noqa: E501


_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENDMARKER}  # fmt: skip


class JacSyntaxError(ValueError):
    pass


@dataclass
class Archetype:
    name: str
    kind: str  # obj, node, edge, class or Enum
    semstr: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # name, semstr, type
    members: list[tuple[str, str]] = field(default_factory=list)  # enum: name, semstr


@dataclass
class Glob:
    name: str
    semstr: str
    value: Any  # a literal, or _Unknown


@dataclass
class Ability:
    name: str
    semstr: str
    params: list[tuple[str, str]]  # name, semstr
    output_semstr: str
    output_type: str  # as MTLLM writes it: no spaces
    incl_info: list[str]
    context: list[str]
    method: str
    line: int


@dataclass
class CallSite:
    ability: Ability
    args: list[Any]
    line: int
    expected: Any = None  # from `check f(...) == value`; `_NONE` when there is none
    source: str = ""  # the call as written


@dataclass
class JacModule:
    path: Path
    archetypes: dict[str, Archetype]
    globs: dict[str, Glob]
    abilities: dict[str, Ability]
    calls: list[CallSite]


class _Unknown:
    """A value this reader cannot know without running the program."""


_NONE = _Unknown()


@dataclass(frozen=True)
class ObjValue:
    type_name: str
    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class EnumValue:
    type_name: str
    member: str


# --- reading -------------------------------------------------------------------------------


def read_module(path: Path) -> JacModule:
    """Raises JacSyntaxError when the file does not tokenize."""
    text = _BLOCK_COMMENT.sub(lambda m: "\n" * m.group().count("\n"), path.read_text("utf-8"))
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in _LAYOUT]  # fmt: skip
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise JacSyntaxError(f"{path}: cannot be read ({exc})") from None
    reader = _Reader(tokens, text)
    module = JacModule(path, {}, {}, {}, [])
    reader.definitions(module)
    module.calls = reader.calls(module)
    return module


class _Reader:
    def __init__(self, tokens: list[tokenize.TokenInfo], text: str) -> None:
        self.tokens, self.lines = tokens, text.splitlines(keepends=True)

    def _is(self, i: int, value: str) -> bool:
        return i < len(self.tokens) and self.tokens[i].string == value

    def _semstr(self, i: int) -> tuple[str, int]:
        """A semstring at `i` (an archetype's or an ability's): its text and what follows."""
        token = self.tokens[i] if i < len(self.tokens) else None
        if token is not None and token.type == tokenize.STRING:
            return _string_value(token.string), i + 1
        return "", i

    def _label(self, i: int) -> tuple[str, int]:
        """A semstring labelling what follows it (`'Full name': str`) at `i`: its text and
        where the labelled part starts; without one, ("", i)."""
        semstr, j = self._semstr(i)
        return (semstr, j + 1) if semstr and self._is(j, ":") else ("", i)

    def _close(self, i: int) -> int:
        """Index of the bracket closing the one at `i`."""
        depth = 0
        for j in range(i, len(self.tokens)):
            s = self.tokens[j].string
            depth += s in ("(", "[", "{") and self.tokens[j].type == tokenize.OP
            depth -= s in (")", "]", "}") and self.tokens[j].type == tokenize.OP
            if depth == 0:
                return j
        raise JacSyntaxError("unbalanced brackets")

    def _source(self, start: int, end: int) -> str:
        """The text from token `start` to token `end` (inclusive)."""
        (l1, c1), (l2, c2) = self.tokens[start].start, self.tokens[end].end
        if l1 == l2:
            return self.lines[l1 - 1][c1:c2]
        return self.lines[l1 - 1][c1:] + "".join(self.lines[l1 : l2 - 1]) + self.lines[l2 - 1][:c2]

    def _until(self, i: int, stops: set[str]) -> int:
        """First index from `i` of a top-level token in `stops`."""
        while i < len(self.tokens) and self.tokens[i].string not in stops:
            i = self._close(i) + 1 if self.tokens[i].string in ("(", "[", "{") else i + 1
        return i

    def definitions(self, module: JacModule) -> None:
        i, tokens = 0, self.tokens
        while i < len(tokens):
            word = tokens[i].string
            if word in _ARCHETYPES or word == "enum":
                i = self._archetype(i, module)
            elif word == "glob":
                i = self._glob(i + 1, module)
            elif word == "can":
                i = self._ability(i, module)
            elif word in ("(", "[", "{"):
                i = self._close(i) + 1 if word != "{" else i + 1
            else:
                i += 1

    def _archetype(self, i: int, module: JacModule) -> int:
        kind = "Enum" if self.tokens[i].string == "enum" else self.tokens[i].string
        semstr, j = self._semstr(i + 1)
        if j >= len(self.tokens) or self.tokens[j].type != tokenize.NAME:
            return i + 1
        name = self.tokens[j].string
        j += 1
        if self._is(j, "("):  # base archetypes
            j = self._close(j) + 1
        if not self._is(j, "{"):
            return j  # a declaration without a body
        end = self._close(j)
        arch = Archetype(name, kind, semstr)
        if kind == "Enum":
            self._members(j + 1, end, arch)
        else:
            self._fields(j + 1, end, arch)
        module.archetypes[name] = arch
        return end + 1

    def _members(self, i: int, end: int, arch: Archetype) -> None:
        while i < end:
            if self.tokens[i].type == tokenize.NAME:
                name = self.tokens[i].string
                semstr = ""
                if self._is(i + 1, ":"):
                    semstr, _ = self._semstr(i + 2)
                arch.members.append((name, semstr))
            i = self._until(i + 1, {",", "}"}) + 1

    def _fields(self, i: int, end: int, arch: Archetype) -> None:
        while i < end:
            if self.tokens[i].string != "has":
                i = self._close(i) + 1 if self.tokens[i].string in ("(", "[", "{") else i + 1
                continue
            i += 1
            while i < end:  # `has a: 'semstr': type = default, b: type;`
                name = self.tokens[i].string
                semstr, type_text = "", ""
                j = i + 1
                if self._is(j, ":"):
                    semstr, k = self._label(j + 1)
                    j = self._until(k, {",", ";", "="})
                    type_text = self._source(k, j - 1).replace(" ", "")
                if self._is(j, "="):
                    j = self._until(j + 1, {",", ";"})
                arch.fields.append((name, semstr, type_text))
                i = j + 1
                if self.tokens[j].string == ";":
                    break

    def _glob(self, i: int, module: JacModule) -> int:
        end = self._until(i, {";"})
        while i < end:  # `glob a: 'semstr': type = value, b = value;`
            name = self.tokens[i].string
            semstr, j = "", i + 1
            if self._is(j, ":"):
                semstr, k = self._label(j + 1)
                j = self._until(k, {"=", ",", ";"})
            value: Any = _NONE
            if self._is(j, "="):
                stop = self._until(j + 1, {",", ";"})
                value = _literal(self._source(j + 1, stop - 1), module)
                j = stop
            module.globs[name] = Glob(name, semstr, value)
            i = j + 1
        return end + 1

    def _ability(self, i: int, module: JacModule) -> int:
        start = i
        semstr, j = self._semstr(i + 1)
        named = j < len(self.tokens) and self.tokens[j].type == tokenize.NAME
        if not named or not self._is(j + 1, "("):
            return i + 1
        name = self.tokens[j].string
        close = self._close(j + 1)
        params = self._params(j + 2, close)
        end = self._until(close + 1, {";", "{"})
        if self.tokens[end].string == "{":
            return end  # a body: an ordinary ability (its calls are read later)
        tail = close + 1
        output_semstr, output_type = "", ""
        if self._is(tail, "->"):
            output_semstr, k = self._label(tail + 1)
            by = self._until(k, {"by", ";"})
            output_type = self._source(k, by - 1).replace(" ", "") if by > k else ""
            tail = by
        if not (self._is(tail, "by") and self._is(tail + 1, "llm") and self._is(tail + 2, "(")):
            return end + 1
        params_of_llm = self._source(tail + 1, self._close(tail + 2))
        incl, context, method = _llm_params(params_of_llm)
        module.abilities[name] = Ability(
            name, semstr, params, output_semstr, output_type, incl, context, method,
            self.tokens[start].start[0],
        )  # fmt: skip
        return end + 1

    def _params(self, i: int, close: int) -> list[tuple[str, str]]:
        params = []
        while i < close:
            name = self.tokens[i].string
            semstr = self._label(i + 2)[0] if self._is(i + 1, ":") else ""
            params.append((name, semstr))
            i = self._until(i + 1, {",", ")"}) + 1
        return params

    def calls(self, module: JacModule) -> list[CallSite]:
        """Calls to the module's `by llm()` abilities with literal arguments, in file order."""
        found: list[CallSite] = []
        tokens = self.tokens
        for i, token in enumerate(tokens):
            ability = module.abilities.get(token.string)
            if ability is None or not self._is(i + 1, "(") or (i and tokens[i - 1].string == "can"):
                continue
            if i >= 2 and tokens[i - 1].type == tokenize.STRING and tokens[i - 2].string == "can":
                continue
            close = self._close(i + 1)
            source = self._source(i, close)
            args = _call_args(source, module)
            if args is None or len(args) != len(ability.params):
                continue
            expected: Any = _NONE
            if i and tokens[i - 1].string in ("check", "assert") and self._is(close + 1, "=="):
                stop = self._until(close + 2, {";", "}"})
                expected = _literal(self._source(close + 2, stop - 1), module)
            found.append(CallSite(ability, args, token.start[0], expected, source))
        return found


def _string_value(token: str) -> str:
    try:
        value = ast.literal_eval(token)
    except (SyntaxError, ValueError):
        return token.strip("'\"")
    return value if isinstance(value, str) else str(value)


def _llm_params(source: str) -> tuple[list[str], list[str], str]:
    """`llm(incl_info=(a, b), context=["..."], method="Reason")` → names, context, method."""
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError:
        return [], [], "Normal"
    incl: list[str] = []
    context: list[str] = []
    method = "Normal"
    for keyword in call.keywords if isinstance(call, ast.Call) else []:
        value = keyword.value
        if keyword.arg == "incl_info":
            items = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
            incl = [n.id for n in items if isinstance(n, ast.Name)]
        elif keyword.arg == "context" and isinstance(value, ast.List | ast.Tuple):
            context = [e.value for e in value.elts
                       if isinstance(e, ast.Constant) and isinstance(e.value, str)]  # fmt: skip
        elif keyword.arg == "method" and isinstance(value, ast.Constant):
            method = str(value.value)
    return incl, context, method


def _call_args(source: str, module: JacModule) -> list[Any] | None:
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or call.keywords:
        return None
    values = [_value(a, module) for a in call.args]
    return None if any(v is _NONE for v in values) else values


def _literal(source: str, module: JacModule) -> Any:
    try:
        return _value(ast.parse(source.strip(), mode="eval").body, module)
    except SyntaxError:
        return _NONE


def _value(node: ast.expr, module: JacModule) -> Any:
    """A literal's value (objects as ObjValue, enum members as EnumValue), else _NONE."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand, module)
        return -inner if isinstance(inner, int | float) else _NONE
    if isinstance(node, ast.List | ast.Tuple):
        items = [_value(e, module) for e in node.elts]
        if any(v is _NONE for v in items):
            return _NONE
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        pairs = [(_value(k, module) if k else _NONE, _value(v, module))
                 for k, v in zip(node.keys, node.values, strict=True)]  # fmt: skip
        if any(k is _NONE or v is _NONE for k, v in pairs):
            return _NONE
        return dict(pairs)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        arch = module.archetypes.get(node.value.id)
        if arch and arch.kind == "Enum" and node.attr in dict(arch.members):
            return EnumValue(arch.name, node.attr)
        return _NONE
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        arch = module.archetypes.get(node.func.id)
        if arch is None or arch.kind == "Enum":
            return _NONE
        names = [f[0] for f in arch.fields]
        given = dict(zip(names, (_value(a, module) for a in node.args), strict=False))
        given.update({k.arg: _value(k.value, module) for k in node.keywords if k.arg})
        if any(v is _NONE for v in given.values()) or set(given) - set(names):
            return _NONE
        return ObjValue(arch.name, tuple((n, given[n]) for n in names if n in given))
    return _NONE


def known(value: Any) -> bool:
    return value is not _NONE


# --- MTLLM's prompt ------------------------------------------------------------------------


def object_string(value: Any) -> str:
    """`mtllm.utils.get_object_string`."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(object_string(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(object_string(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{object_string(k)}: {object_string(v)}"
                               for k, v in value.items()) + "}"  # fmt: skip
    if isinstance(value, EnumValue):
        return f"{value.type_name}.{value.member}"
    if isinstance(value, ObjValue):
        fields = ", ".join(f"{k}={object_string(v)}" for k, v in value.fields)
        return f"{value.type_name}({fields})"
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    return str(value)


def type_annotation(value: Any) -> str:
    """`mtllm.utils.get_type_annotation`: the type of a runtime value."""
    if isinstance(value, dict):
        first = next((v for v in value.values() if v is not None), None)
        return f"dict[str, {_class_name(first)}]" if first is not None else "dict[str, Any]"
    if isinstance(value, list):
        return f"list[{_class_name(value[0])}]" if value else "list"
    return _class_name(value)


def _class_name(value: Any) -> str:
    if isinstance(value, ObjValue | EnumValue):
        return value.type_name
    return type(value).__name__


def non_primary(type_text: str) -> list[str]:
    """`mtllm.utils.extract_non_primary_type`."""
    if not type_text:
        return []
    return [m for pair in _NON_PRIMARY.findall(type_text) for m in pair
            if m and m not in _PRIMARY]  # fmt: skip


def _explanation(name: str, module: JacModule) -> tuple[str, list[str]]:
    arch = module.archetypes.get(name)
    if arch is None:
        return "", []
    nested: list[str] = []
    if arch.kind == "Enum":
        example = ", ".join(f'{name}.{m} : "{s}"' if s else f"{name}.{m}" for m, s in arch.members)
    else:
        parts = []
        for field_name, semstr, type_text in arch.fields:
            parts.append(f'{field_name}="{semstr}":{type_text}' if semstr
                         else f"{field_name}={type_text}")  # fmt: skip
            nested += [t for t in non_primary(type_text) if t not in nested]
        example = f"{name}({', '.join(parts)})"
    return f"{arch.semstr} ({name}) ({arch.kind}) eg:- {example}".strip(), nested


def _explanations(types: list[str], module: JacModule, into: dict[str, str]) -> None:
    """`mtllm.aott.get_all_type_explanations`: each type, then the types its fields use."""
    for type_name in types:
        text, nested = _explanation(type_name, module)
        if text and type_name not in into:
            into[type_name] = text
        if nested:
            inner: dict[str, str] = {}
            _explanations(nested, module, inner)
            for key, value in inner.items():
                into.setdefault(key, value)


def render(call: CallSite, module: JacModule) -> str:
    """The user message MTLLM sends for this call."""
    ability = call.ability
    information = []
    for name in ability.incl_info:
        glob = module.globs.get(name)
        if glob is None or not known(glob.value):
            raise ValueError(f"incl_info {name!r} is not a literal glob")
        information.append(f"{glob.semstr} ({name}) ({type_annotation(glob.value)}) = "
                           f"{object_string(glob.value)}".strip())  # fmt: skip
    inputs, collected = [], []
    for (name, semstr), value in zip(ability.params, call.args, strict=True):
        inputs.append(f"{semstr} ({name}) ({type_annotation(value)}) = "
                      f"{object_string(value)}".strip())  # fmt: skip
        collected += non_primary(type_annotation(value))
    collected += non_primary(ability.output_type)
    explanations: dict[str, str] = {}
    _explanations(collected, module, explanations)
    prompt = PROMPT.format(
        information="\n".join(information),
        inputs_information="\n".join(inputs),
        output_information=f"{ability.output_semstr} ({ability.output_type})".strip(),
        type_explanations="\n".join(explanations.values()),
        action=ability.semstr or ability.name,
        context="\n".join(ability.context),
    ).strip()
    return "\n".join([SYSTEM_PROMPT, prompt, NORMAL_SUFFIX])


def value_text(value: Any, output_type: str) -> str:
    """An expected value as the answer after `[Output]`: a `str` output as the text itself."""
    if output_type == "str" and isinstance(value, str):
        return value
    return object_string(value)
