"""JSON Schema checks with compiled validators.

`jsonschema.validate` checks the schema itself on every call (~2 ms for a tool's parameters),
which dominated both the recorder's judgements and dataset builds; here each distinct schema is
checked and compiled once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match


@lru_cache(maxsize=1024)
def _validator(schema_text: str) -> Any:
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    return cls(schema)


def violation(value: Any, schema: dict[str, Any]) -> str | None:
    """Why `value` does not satisfy `schema`, or None. A broken schema judges nothing (None)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None
    error = best_match(validator.iter_errors(value))
    return None if error is None else error.message
