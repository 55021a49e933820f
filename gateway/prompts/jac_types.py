"""Jac's declared types, as MTLLM writes them into its prompts, and the values that have them.

MTLLM names an output type the way the Jac source spells it (`int`, `list[str]`,
`dict[str,int]`, `Person`, `int | None`) and explains each `obj` and `enum` it involves in a
`[Type Explanations]` line:

    A person (Person) (obj) eg:- Person(name="Full name":str, age=int)
    Mood of a text (Mood) (Enum) eg:- Mood.HAPPY : "glad", Mood.SAD

It turns the answer's text into a value by evaluating it as a Python expression in the
program's globals. Here the same text is parsed (never run) and checked: the expression has the
declared type, each object names every field of its type, each field value has the field's type.
`grammar` gives the llama.cpp grammar that lets a model write only such values.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

_EXPLANATION = re.compile(
    r"^(?P<semstr>.*?)\s*\((?P<name>\w+)\) \((?P<kind>\w+)\) eg:- (?P<eg>.*)$"
)
_ENUM_MEMBER = re.compile(r"(\w+)\.(\w+)(?: : \"|,|$)")


@dataclass(frozen=True)
class TypeSpec:
    """A parsed type: a name (`int`, `list`, `Person`, `|` for a union) and its arguments."""

    name: str
    args: tuple[TypeSpec, ...] = ()

    def __str__(self) -> str:
        if self.name == "|":
            return " | ".join(map(str, self.args))
        return f"{self.name}[{', '.join(map(str, self.args))}]" if self.args else self.name


@dataclass
class Explained:
    """An `obj` (fields in declared order) or an `Enum` (its members) from the prompt."""

    name: str
    kind: str  # obj, class, node, edge or Enum
    fields: dict[str, TypeSpec] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)


class TypeSyntaxError(ValueError):
    pass


def parse_type(text: str) -> TypeSpec:
    """`dict[str,int]` → TypeSpec('dict', (str, int)); raises TypeSyntaxError."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TypeSyntaxError(f"not a type: {text!r}") from exc
    return _spec(node, text)


def _spec(node: ast.expr, text: str) -> TypeSpec:
    if isinstance(node, ast.Name):
        return TypeSpec(node.id)
    if isinstance(node, ast.Constant) and node.value is None:
        return TypeSpec("None")
    if isinstance(node, ast.Attribute):
        return TypeSpec(node.attr)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _spec(node.left, text), _spec(node.right, text)
        return TypeSpec("|", _alternatives(left) + _alternatives(right))
    if isinstance(node, ast.Subscript):
        outer = _spec(node.value, text)
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer.name == "Optional":
            return TypeSpec("|", (_spec(inner[0], text), TypeSpec("None")))
        if outer.name == "Union":
            return TypeSpec("|", tuple(_spec(e, text) for e in inner))
        return TypeSpec(outer.name.lower() if outer.name in ("List", "Dict", "Set", "Tuple")
                        else outer.name, tuple(_spec(e, text) for e in inner))  # fmt: skip
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return TypeSpec("...")
    raise TypeSyntaxError(f"not a type: {text!r}")


def _alternatives(spec: TypeSpec) -> tuple[TypeSpec, ...]:
    return spec.args if spec.name == "|" else (spec,)


def parse_explanations(lines: str) -> dict[str, Explained]:
    """The `[Type Explanations]` section, by type name; lines it cannot read are left out."""
    found: dict[str, Explained] = {}
    for line in lines.splitlines():
        match = _EXPLANATION.match(line.strip())
        if match is None:
            continue
        name, kind, eg = match["name"], match["kind"], match["eg"]
        if kind == "Enum":
            members = [m for owner, m in _ENUM_MEMBER.findall(eg) if owner == name]
            found[name] = Explained(name, kind, members=members)
            continue
        fields = _fields(eg, name)
        if fields is not None:
            found[name] = Explained(name, kind, fields=fields)
    return found


def _fields(eg: str, name: str) -> dict[str, TypeSpec] | None:
    """`Person(name="Full name":str, age=int)` → {name: str, age: int}; a semstring may hold
    anything but `":`, a type nests brackets."""
    if not (eg.startswith(name + "(") and eg.endswith(")")):
        return None
    rest = eg[len(name) + 1 : -1]
    fields: dict[str, TypeSpec] = {}
    while rest:
        head = re.match(r"\s*(\w+)=", rest)
        if head is None:
            return None
        rest = rest[head.end() :]
        if rest.startswith('"'):
            end = rest.find('":')
            if end < 0:
                return None
            rest = rest[end + 2 :]
        type_text, rest = _until_comma(rest)
        try:
            fields[head[1]] = parse_type(type_text)
        except TypeSyntaxError:
            return None
    return fields


def _until_comma(text: str) -> tuple[str, str]:
    depth = 0
    for i, char in enumerate(text):
        depth += char in "[("
        depth -= char in "])"
        if char == "," and depth == 0:
            return text[:i], text[i + 1 :]
    return text, ""


def type_problem(text: str, spec: TypeSpec, explained: dict[str, Explained]) -> str | None:
    """What keeps the answer `text` (the part after `[Output]`) from being a value of `spec`,
    or None. A `str` output is the text itself, as MTLLM takes it."""
    if spec.name == "str":
        return None if text.strip() else "empty output"
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        return f"does not parse: {exc.msg}"
    return _value_problem(node, spec, explained, "output")


def _value_problem(
    node: ast.expr, spec: TypeSpec, explained: dict[str, Explained], where: str
) -> str | None:
    name = spec.name
    if name in ("any", "Any", "..."):
        return None if _is_literal(node, explained) else f"{where}: not a plain value"
    if name == "|":
        problems = [_value_problem(node, alt, explained, where) for alt in spec.args]
        return None if None in problems else problems[0]
    if name == "None":
        return None if _constant(node, type(None)) else f"{where}: not None"
    if name in ("int", "float", "bool", "str"):
        wanted: tuple[type, ...] = {"int": (int,), "float": (int, float), "bool": (bool,),
                                    "str": (str,)}[name]  # fmt: skip
        return None if _constant(node, *wanted) else f"{where}: not {name}"
    if name in ("list", "set", "tuple"):
        shape = {"list": ast.List, "set": ast.Set, "tuple": ast.Tuple}[name]
        if not isinstance(node, ast.List | ast.Set | ast.Tuple) or not isinstance(node, shape):
            return f"{where}: not a {name}"
        element_types = _element_types(spec, len(node.elts))
        if element_types is None:
            return f"{where}: {len(node.elts)} items, not {len(spec.args)}"
        for i, (element, element_type) in enumerate(zip(node.elts, element_types, strict=True)):
            if problem := _value_problem(element, element_type, explained, f"{where}[{i}]"):
                return problem
        return None
    if name == "dict":
        if not isinstance(node, ast.Dict):
            return f"{where}: not a dict"
        key_type, value_type = (*spec.args, TypeSpec("any"), TypeSpec("any"))[:2]
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                return f"{where}: ** in a dict"
            if problem := _value_problem(key, key_type, explained, f"{where} key"):
                return problem
            label = f"{where}[{ast.unparse(key)}]"
            if problem := _value_problem(value, value_type, explained, label):
                return problem
        return None
    return _named_problem(node, name, explained, where)


def _element_types(spec: TypeSpec, n: int) -> list[TypeSpec] | None:
    if not spec.args:
        return [TypeSpec("any")] * n
    if spec.name != "tuple" or (len(spec.args) == 2 and spec.args[1].name == "..."):
        return [spec.args[0]] * n
    return list(spec.args) if len(spec.args) == n else None


def _named_problem(
    node: ast.expr, name: str, explained: dict[str, Explained], where: str
) -> str | None:
    known = explained.get(name)
    if known is not None and known.kind == "Enum":
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == name and node.attr in known.members):  # fmt: skip
            return None
        return f"{where}: not one of {', '.join(f'{name}.{m}' for m in known.members)}"
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == name):  # fmt: skip
        return f"{where}: not a {name}(...)"
    if known is None:
        return None  # a type the prompt does not explain: its name is all there is to check
    names = list(known.fields)
    if len(node.args) > len(names):
        return f"{where}: {name} takes {len(names)} fields"
    given = dict(zip(names, node.args, strict=False))
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg not in known.fields:
            return f"{where}: {name} has no field {keyword.arg!r}"
        if keyword.arg in given:
            return f"{where}: field {keyword.arg!r} given twice"
        given[keyword.arg] = keyword.value
    missing = [n for n in names if n not in given]
    if missing:
        return f"{where}: {name} misses {', '.join(missing)}"
    for field_name, value in given.items():
        label = f"{where}.{field_name}"
        if problem := _value_problem(value, known.fields[field_name], explained, label):
            return problem
    return None


def _constant(node: ast.expr, *types: type) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
        types = tuple(t for t in types if t in (int, float))
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _is_literal(node: ast.expr, explained: dict[str, Explained]) -> bool:
    """A value made of literals, enum members and objects of explained types only."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand, explained)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_is_literal(e, explained) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k, explained) for k in node.keys) and all(
            _is_literal(v, explained) for v in node.values
        )
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id in explained
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in explained and all(
            _is_literal(a, explained) for a in [*node.args, *(k.value for k in node.keywords)]
        )
    return False


def plain(text: str, spec: TypeSpec, explained: dict[str, Explained]) -> Any:
    """The answer as plain data for comparing (objects as dicts of their fields, enum members
    as `Mood.HAPPY`), or None when it does not parse."""
    if spec.name == "str":
        return text.strip()
    try:
        return _plain(ast.parse(text.strip(), mode="eval").body, explained)
    except (SyntaxError, ValueError):
        return None


def _plain(node: ast.expr, explained: dict[str, Explained]) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        names = list(explained[node.func.id].fields) if node.func.id in explained else []
        value = dict(zip(names, (_plain(a, explained) for a in node.args), strict=False))
        value.update({k.arg or "": _plain(k.value, explained) for k in node.keywords})
        return value
    if isinstance(node, ast.Attribute):
        return ast.unparse(node)
    if isinstance(node, ast.Dict):
        return {_key(_plain(k, explained)): _plain(v, explained)
                for k, v in zip(node.keys, node.values, strict=True) if k is not None}  # fmt: skip
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_plain(e, explained) for e in node.elts]
    return ast.literal_eval(node)


def _key(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


# --- grammar ------------------------------------------------------------------------------

_BASE_RULES = {
    "ws": '[ ]?',
    "str": r'"\"" ( [^"\\\n] | "\\" ["\\nt] ){0,200} "\""',
    "int": '"-"? ("0" | [1-9] [0-9]{0,8})',
    "float": 'int ("." [0-9]{1,6})?',
    "bool": '"True" | "False"',
    "None": '"None"',
    "any": 'str | float | bool | None | "[" ws (any ("," ws any){0,50})? "]" | '
           '"{" ws (str ":" ws any ("," ws str ":" ws any){0,50})? "}"',
    "line": '[^<\\n] [^\\n]{0,400}',  # not MTLLM's `<result>` placeholder
}  # fmt: skip


def grammar(spec: TypeSpec, explained: dict[str, Explained]) -> str:
    """A GBNF grammar for `[Output] <a value of spec>`: Python literals, `Name(field=...)` for
    objects, `Name.MEMBER` for enums. A `str` output is one line of text. Numbers are bounded
    (a small model at temperature 0 otherwise writes digits up to the limit)."""
    rules: dict[str, str] = {}
    top = "line" if spec.name == "str" else _rule(spec, explained, rules, ())
    used = {**_BASE_RULES, **rules}
    body = [f'root ::= "[Output] " {top}'] + [f"{name} ::= {rhs}" for name, rhs in used.items()]
    return "\n".join(body) + "\n"


def _rule(spec: TypeSpec, explained: dict[str, Explained], rules: dict[str, str],
          seen: tuple[str, ...]) -> str:  # fmt: skip
    name = spec.name
    if name in ("str", "int", "float", "bool", "None"):
        return name
    if name in ("any", "Any", "..."):
        return "any"
    rule = "t-" + re.sub(r"[^a-zA-Z0-9]+", "-", str(spec)).strip("-").lower()
    if rule in rules or name in seen:
        return rule if rule in rules else "any"
    rules[rule] = ""  # reserve: a recursive type refers to itself
    sub = lambda s: _rule(s, explained, rules, (*seen, name))  # noqa: E731
    if name == "|":
        rhs = " | ".join(sub(a) for a in spec.args)
    elif name in ("list", "set"):
        element = sub(spec.args[0]) if spec.args else "any"
        open_, close = ("[", "]") if name == "list" else ("{", "}")
        rhs = f'"{open_}" ws ({element} ("," ws {element}){{0,50}})? "{close}"'
        if name == "set":
            rhs = f'"set()" | "{{" ws {element} ("," ws {element}){{0,50}} "}}"'
    elif name == "tuple":
        parts = [sub(a) for a in spec.args] or ["any"]
        if len(parts) == 2 and spec.args[1].name == "...":
            parts = [parts[0]]
            rhs = f'"(" ws ({parts[0]} ("," ws {parts[0]}){{0,50}})? ")"'
        else:
            rhs = '"(" ' + ' "," ws '.join(parts) + (' ","' if len(parts) == 1 else "") + ' ")"'
    elif name == "dict":
        key, value = [sub(a) for a in spec.args] if len(spec.args) == 2 else ["str", "any"]
        pair = f'{key} ":" ws {value}'
        rhs = f'"{{" ws ({pair} ("," ws {pair}){{0,50}})? "}}"'
    elif name in explained and explained[name].kind == "Enum":
        rhs = " | ".join(f'"{name}.{m}"' for m in explained[name].members) or '"None"'
    elif name in explained:
        fields = explained[name].fields
        parts = [f'"{f}=" {sub(t)}' for f, t in fields.items()]
        rhs = f'"{name}(" ' + ' ", " '.join(parts) + ' ")"' if parts else f'"{name}()"'
    else:
        rhs = "any"
    rules[rule] = rhs
    return rule
