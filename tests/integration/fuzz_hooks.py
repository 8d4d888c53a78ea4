"""schemathesis hooks for the fuzz run (``SCHEMATHESIS_HOOKS``): keep its time within the suite's budget.

The API accepts RPC timeouts up to 120 s and simulated work up to 60 s per request; a fuzzed call that waits that
long is a correct answer (504 after its timeout), not a finding, but it would eat the run's time budget. The
fuzzed schema caps those numbers; everything else (types, names, tables, every other bound) is fuzzed as the API
documents it.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CAPS = {"timeout_s": 2, "work_ms": 20, "ack_delay_ms": 20, "calls": 40, "count": 50}


def _cap(schema: Any, limit: float) -> None:
    if not isinstance(schema, dict):
        return
    if "maximum" in schema:
        schema["maximum"] = min(schema["maximum"], limit)
    elif schema.get("type") in ("integer", "number"):
        schema["maximum"] = limit
    for variant in schema.get("anyOf", []):
        _cap(variant, limit)


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    for model in raw_schema.get("components", {}).get("schemas", {}).values():
        for name, prop in model.get("properties", {}).items():
            if name in CAPS:
                _cap(prop, CAPS[name])
