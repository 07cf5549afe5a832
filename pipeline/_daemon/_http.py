"""JSON errors and id checks shared by every route.

Every error the daemon returns has one shape, OpenAI's (so the official SDK
parses it too)::

    {"error": {"type": "...", "message": "...", "param": null, "code": null}}
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

#: Run and narration job ids: 1–64 letters, digits, ``_`` or ``-``, starting
#: with a letter or digit. Anything else (``..``, ``/``, ``%2F``) is a 404
#: before any path is built.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

#: Deepest JSON nesting accepted in a body or WebSocket message (ours are 3 deep).
#: Deeper documents get a 400 instead of reaching ``json.loads``, whose
#: recursion would otherwise fail (a 500, or a WebSocket dropped without a close).
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class ApiError(Exception):
    """An error answered as JSON with ``status``.

    Attributes:
        status: HTTP status code.
        type: machine-readable kind (``"not_found"``, ``"payload_too_large"``...).
        message: human-readable explanation.
        param: the request field concerned, if any.
    """

    def __init__(self, status: int, type: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.param = param


def too_deep(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays/objects deeper than ``limit``.

    Brackets inside strings do not count. Linear time, no recursion, and it
    stops at the first level past ``limit``, so it is cheap on hostile input;
    malformed text is left for the parser to report.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    if len(brackets) <= limit:
        return False
    return any(d > limit for d in itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)))


def check_json_depth(data: bytes | str) -> None:
    """Raise ``ApiError(400)`` when ``data`` nests deeper than :data:`MAX_JSON_DEPTH`."""
    if too_deep(data):
        raise ApiError(400, "invalid_request_error",
                       f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


def parse_json(text: str) -> Any:
    """``json.loads(text)`` after :func:`check_json_depth`.

    Raises:
        ApiError: 400 when nested too deep.
        ValueError: not JSON.
    """
    check_json_depth(text)
    return json.loads(text)


#: ``type`` of the errors Starlette raises itself (unknown route, wrong method...).
STATUS_TYPES = {400: "invalid_request_error", 401: "unauthorized", 403: "forbidden",
                404: "not_found", 405: "method_not_allowed", 409: "conflict",
                413: "payload_too_large", 422: "invalid_request_error",
                500: "internal_error"}


def not_json(reason: str, at: int | None = None) -> ApiError:
    """A 400 ``invalid_request_error``: the body is not JSON, because of ``reason``
    (``at``: the character offset where decoding failed, when known)."""
    where = f" at character {at}" if at is not None else ""
    return ApiError(400, "invalid_request_error", f"the body is not JSON: {reason}{where}")


#: At most this many field errors are spelled out in one message (then "and N more").
MAX_FIELD_ERRORS = 5

#: pydantic error types that mean "the document is not an object" at its top.
_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})


def invalid_fields(errors: Sequence[Mapping[str, Any]], *, skip: int = 0) -> ApiError:
    """A 422 ``invalid_request_error`` for pydantic's ``errors()``: one line,
    ``"field: reason; items[0].text: reason"`` (at most :data:`MAX_FIELD_ERRORS`,
    then ``"and N more"``), ``param`` the first field; ``"the body: must be a JSON
    object"`` (``param`` null) when the document itself is not an object. Field
    names come from the client (an unknown key): control characters are escaped
    and each name is cut to 64 characters. ``skip``: leading parts of each
    ``loc`` to drop (FastAPI's ``"body"``)."""
    fields = [_field(error.get("loc", ())[skip:]) for error in errors]
    parts = []
    for field, error in zip(fields[:MAX_FIELD_ERRORS], errors, strict=False):
        if field:
            parts.append(f"{field}: {error.get('msg')}")
        elif error.get("type") in _NOT_AN_OBJECT:
            parts.append("the body: must be a JSON object")
        else:
            parts.append(f"the body: {error.get('msg')}")
    if len(errors) > MAX_FIELD_ERRORS:
        parts.append(f"and {len(errors) - MAX_FIELD_ERRORS} more")
    return ApiError(422, "invalid_request_error", "; ".join(parts) or "invalid request",
                    param=fields[0] if fields and fields[0] else None)


def _field(loc: Sequence[Any]) -> str:
    """``("items", 0, "text")`` as ``items[0].text``, safe to print on one line."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            text = json.dumps(str(part), ensure_ascii=False)[1:-1]  # escapes \n and friends
            text = text if len(text) <= 64 else text[:63] + "…"
            name += f".{text}" if name else text
    return name


def error_body(type: str, message: str, *, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error (see the module docstring)."""
    return {"error": {"type": type, "message": message, "param": param, "code": type}}


def error_response(exc: ApiError) -> JSONResponse:
    """``exc`` as a :class:`JSONResponse`."""
    return JSONResponse(error_body(exc.type, exc.message, param=exc.param), status_code=exc.status)


def check_id(value: str, *, kind: str) -> str:
    """Return ``value`` if it is a valid id (:data:`ID_RE`), else raise ``ApiError(404)``."""
    if not ID_RE.match(value):
        raise ApiError(404, "not_found", f"no {kind} {value!r}")
    return value


def contained(base: Path, name: str) -> Path:
    """``base / name`` resolved, guaranteed to stay inside ``base``.

    Raises:
        ApiError: 404 when the result would leave ``base`` (``..``, absolute
            names, symlinks pointing out).
    """
    root = base.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ApiError(404, "not_found", f"no file {name!r}")
    return path


def check_length(value: str, limit: int, *, param: str) -> None:
    """Raise ``ApiError(413)`` when ``value`` is longer than ``limit`` characters."""
    if len(value) > limit:
        raise ApiError(
            413,
            "payload_too_large",
            f"{param} is {len(value)} characters; the limit is {limit}",
            param=param,
        )
