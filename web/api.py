"""Request validation and the OpenAPI document, from one source: pydantic models on each JSON route.

    @api.route(bp, "/api/exchanges", "POST", body=ExchangeIn, summary="Declare an exchange", responses={201: "..."})
    def declare_exchange(body: ExchangeIn): ...

Invalid input (bad JSON, wrong types, unknown fields) becomes a 400 ``INVALID`` error before any broker work.
Types are strict: ``"5"`` is no integer and ``1`` no boolean. The body must be ``application/json`` (415 else: a
form another site posts cannot act), must not be empty (``{}`` asks for the defaults), must nest no deeper than
``RABBITLENS_MAX_JSON_DEPTH`` and must be valid Unicode (no lone surrogates such as ``\ud800``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, ValidationError

from rabbit.errors import InvalidInput, LabError


class ApiModel(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped; no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


DEFAULT_MAX_JSON_DEPTH = 32


class UnsupportedMediaType(InvalidInput):
    code = "UNSUPPORTED_MEDIA_TYPE"


@dataclass
class Operation:
    path: str
    method: str
    summary: str
    body: type[BaseModel] | None
    responses: dict[int, str]
    tag: str
    query: dict[str, str] = field(default_factory=dict)


def describe_validation_error(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    problems = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        problems.append({"field": where, "problem": err["msg"]})
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first['field']}: {first['problem']}{more}", problems


def check_json_value(data: Any, max_depth: int) -> None:
    """Raises :class:`InvalidInput` if ``data`` nests deeper than ``max_depth`` or holds a string (or key) that is
    not valid Unicode (a lone surrogate cannot be sent to the broker as UTF-8). Iterative: no recursion limit."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, (dict, list)):
            if depth > max_depth:
                raise InvalidInput(
                    f"request body nests deeper than {max_depth} levels (RABBITLENS_MAX_JSON_DEPTH)",
                    details={"max_depth": max_depth},
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, f"{where}.{key!a}")
                    stack.append((item, depth + 1, f"{where}.{key}"))
            else:
                stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ascii(text[exc.start : exc.end])
        raise InvalidInput(
            f"{where}: holds {bad}, a lone surrogate: not valid UTF-8 text (send arbitrary bytes as base64)"
        ) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON body validated as ``model``; raises :class:`InvalidInput` with every problem."""
    mimetype = request.mimetype
    if mimetype != "application/json":
        shown = ascii(mimetype or "none")
        raise UnsupportedMediaType(f"send the request body as JSON with Content-Type: application/json (not {shown})")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidInput("request body is empty: send a JSON object ({} for the defaults)")
    try:
        data = json.loads(raw)
    except RecursionError:
        depth = current_app.config.get("MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH)
        raise InvalidInput(
            f"request body nests deeper than {depth} levels (RABBITLENS_MAX_JSON_DEPTH)", details={"max_depth": depth}
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    check_json_value(data, current_app.config.get("MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH))
    try:
        # JSON mode: strict types, and enums, dates and nested models from their JSON forms.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        message, problems = describe_validation_error(exc)
        raise InvalidInput(message, details={"problems": problems}) from None


# OpenAPI links: what a created resource's answer lets a client call next (schemathesis' stateful phase follows
# them: create, then read, purge, delete what was created). (method, path, status) -> [(method, path, params)].
# A link with a "body" key gives the next request's JSON body (a consumer on the queue just declared, say).
LINKS: dict[tuple[str, str, int], list[tuple[str, str, dict[str, Any]]]] = {
    ("post", "/api/exchanges", 201): [
        ("post", "/api/taps", {"body": {"exchange": "$response.body#/name", "binding_key": "#"}}),
        ("delete", "/api/exchanges/{name}", {"name": "$response.body#/name"}),
    ],
    ("post", "/api/queues", 201): [
        ("post", "/api/consumers", {"body": {"queue": "$response.body#/name"}}),
        ("post", "/api/queues/{name}/purge", {"name": "$response.body#/name"}),
        ("delete", "/api/queues/{name}", {"name": "$response.body#/name"}),
    ],
    ("post", "/api/consumers", 201): [
        ("get", "/api/consumers/{consumer_id}", {"consumer_id": "$response.body#/id"}),
        ("delete", "/api/consumers/{consumer_id}", {"consumer_id": "$response.body#/id"}),
    ],
    ("post", "/api/taps", 201): [("delete", "/api/taps/{tap_id}", {"tap_id": "$response.body#/id"})],
    ("post", "/api/rpc/servers", 201): [
        ("delete", "/api/rpc/servers/{server_id}", {"server_id": "$response.body#/servers/0/id"})
    ],
    ("post", "/api/rpc/burst", 200): [
        ("delete", "/api/rpc/bursts/{burst_id}", {"burst_id": "$response.body#/burst_id"})
    ],
    ("post", "/api/bindings", 201): [
        (
            "delete",
            "/api/bindings",
            {
                "body": {
                    key: f"$response.body#/{key}"
                    for key in ("source", "destination", "destination_type", "routing_key", "arguments")
                }
            },
        )
    ],
}


class ApiRegistry:
    """Registers JSON routes on blueprints and remembers them for ``/api/openapi.json``."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        bp: Blueprint,
        rule: str,
        method: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        responses: dict[int, str] | None = None,
        query: dict[str, str] | None = None,
        invalid_code: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``invalid_code`` renames the ``INVALID`` error code for routes whose issue names another (``invalid``)."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def wrapper(**kwargs: Any) -> Any:
                try:
                    if body is not None:
                        kwargs["body"] = parse_body(body)
                    return view(**kwargs)
                except LabError as exc:
                    if invalid_code and exc.code == InvalidInput.code:
                        exc.code = invalid_code
                    raise

            bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapper, methods=[method])
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
            self.operations.append(
                Operation(path, method.lower(), summary, body, responses or {200: "OK"}, bp.name, query or {})
            )
            return wrapper

        return decorator

    def openapi(self, title: str, version: str) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        schemas: dict[str, Any] = {}
        error_schema = {"$ref": "#/components/schemas/Error"}
        for op in self.operations:
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                for name in re.findall(r"{([^}]+)}", op.path)
            ]
            params += [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
                for name, text in op.query.items()
            ]
            entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": f"{op.method}_{op.path}"}
            if params:
                entry["parameters"] = params
            if op.body is not None:
                schema = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[op.body.__name__] = schema
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}},
                }
            responses: dict[str, Any] = {}
            for status, text in op.responses.items():
                responses[str(status)] = {"description": text}
                if status >= 400:
                    responses[str(status)]["content"] = {"application/json": {"schema": error_schema}}
                elif status != 204:
                    responses[str(status)]["content"] = {"application/json": {"schema": {}}}
            defaults = [(400, "Invalid input"), (503, "Broker unreachable")]
            if op.body is not None:
                defaults.append((415, "The body is not application/json"))
            for status, text in defaults:
                responses.setdefault(
                    str(status), {"description": text, "content": {"application/json": {"schema": error_schema}}}
                )
            known = {(o.method.lower(), o.path) for o in self.operations}
            for status in op.responses:
                links = {}
                for method, path, params in LINKS.get((op.method, op.path, status), []):
                    if (method, path) not in known:
                        continue
                    link: dict[str, Any] = {"operationId": f"{method}_{path}"}
                    path_params = {k: v for k, v in params.items() if k != "body"}
                    if path_params:
                        link["parameters"] = path_params
                    if "body" in params:
                        link["requestBody"] = params["body"]
                    links[f"{method}_{path}"] = link
                if links:
                    responses[str(status)]["links"] = links
            entry["responses"] = responses
            paths.setdefault(op.path, {})[op.method] = entry
        schemas["Error"] = {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "reply_code": {"type": "integer"},
                        "hint": {"type": "string", "description": "one line of what to do"},
                    },
                }
            },
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "paths": paths,
            "components": {"schemas": schemas},
        }


api = ApiRegistry()
docs_bp = Blueprint("docs", __name__)


@docs_bp.get("/api/openapi.json")
def openapi_document() -> dict[str, Any]:
    return api.openapi("RabbitLens API", "0.1.0")
