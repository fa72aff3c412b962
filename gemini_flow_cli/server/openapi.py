"""The OpenAPI 3.1 document of the HTTP API, built from the same table the server enforces
(server/operations.py), so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from gemini_flow_cli import __version__
from gemini_flow_cli.server.operations import OPERATIONS, Operation, body_schema

ERROR = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message", "recoverable"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "recoverable": {"type": "boolean"},
                "details": {"type": "object"},
            },
        },
    },
}

# Exit status -> HTTP status (errors.HTTP_STATUS), with what each means here.
_ERRORS = {
    "400": "bad input (exit 2)",
    "401": "no token, or an invalid or expired one",
    "403": "a valid token without the right (role, namespace, agent)",
    "404": "not found or expired (exit 1)",
    "409": "conflict (exit 3)",
    "413": "too large (exit 5)",
    "500": "a backup or migration failed, or a bug (exit 7, 70)",
    "503": "the database cannot be used now (exit 6)",
}


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if not op.public:
        spec["description"] = f"Needs an API key with role {op.role} or above."
        spec["security"] = [{"bearer": []}]
    else:
        spec["security"] = []
    parameters = []
    for p in op.params:
        if p.where in ("query", "path"):
            entry: dict[str, Any] = {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                                     "schema": p.schema}
            if p.schema.get("type") == "array":
                entry["style"], entry["explode"] = "form", True
            if p.description:
                entry["description"] = p.description
            parameters.append(entry)
    if parameters:
        spec["parameters"] = parameters
    if any(p.where == "body" for p in op.params) or op.method == "POST":
        schema = body_schema(op)
        spec["requestBody"] = {"required": bool(schema.get("required")),
                               "content": {"application/json": {"schema": schema}}}
    responses: dict[str, Any] = {
        str(op.status): {"description": "the matching CLI command's --json document",
                         "content": {"application/json": {"schema": {"type": "object"}}}},
    }
    for status, description in _ERRORS.items():
        if op.public and status in ("401", "403"):
            continue
        responses[status] = {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    spec["responses"] = responses
    return spec


def document() -> dict[str, Any]:
    """The whole document: every operation of :data:`OPERATIONS` plus ``/openapi.json``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gemini-flow",
            "version": __version__,
            "description": "The shared memory and coordination records of one gemini-flow database over HTTP "
                           "(the seed's API under /api/v1). Errors are {\"success\": false, \"error\": {...}} "
                           "with the HTTP status of the CLI's exit status.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "gemini-flow apikey create"}},
            "schemas": {"Error": ERROR},
        },
    }
