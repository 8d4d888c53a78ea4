"""Request validation and the OpenAPI document, from one source: pydantic models on each JSON route.

    @api.route(bp, "/api/exchanges", "POST", body=ExchangeIn, summary="Declare an exchange", responses={201: "..."})
    def declare_exchange(body: ExchangeIn): ...

Invalid input (bad JSON, wrong types, unknown fields) becomes a 400 ``INVALID`` error before any broker work.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict, ValidationError

from rabbit.errors import InvalidInput, LabError


class ApiModel(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


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


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON body validated as ``model``; raises :class:`InvalidInput` with every problem."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, problems = describe_validation_error(exc)
        raise InvalidInput(message, details={"problems": problems}) from None


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
            for status, text in ((400, "Invalid input"), (503, "Broker unreachable")):
                responses.setdefault(
                    str(status), {"description": text, "content": {"application/json": {"schema": error_schema}}}
                )
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
