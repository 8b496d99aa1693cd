"""The one error tree of city-os: every failure a client can cause is an ``NgsiLdError``.

Each subclass carries the NGSI-LD problem type URI, HTTP status and title (GS CIM 009 §5.5.2);
the API middleware renders any of them as an RFC 7807 ProblemDetails body. Internals are logged,
never sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of all errors rendered as ProblemDetails."""

    type_uri: ClassVar[str] = _BASE + "InternalError"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    # The connection cannot be trusted for another request (e.g. a body left half-read).
    closes_connection: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}  # sent with the ProblemDetails (WWW-Authenticate, …)

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidRequest(NgsiLdError):
    type_uri = _BASE + "InvalidRequest"
    status = 400
    title = "Invalid request"


class BadRequestData(NgsiLdError):
    type_uri = _BASE + "BadRequestData"
    status = 400
    title = "Bad request data"


class TooManyResults(NgsiLdError):
    type_uri = _BASE + "TooManyResults"
    status = 403
    title = "Too many results"


class AlreadyExists(NgsiLdError):
    type_uri = _BASE + "AlreadyExists"
    status = 409
    title = "Already exists"


class OperationNotSupported(NgsiLdError):
    type_uri = _BASE + "OperationNotSupported"
    status = 422
    title = "Operation not supported"


class ResourceNotFound(NgsiLdError):
    type_uri = _BASE + "ResourceNotFound"
    status = 404
    title = "Resource not found"


class NonexistentTenant(NgsiLdError):
    type_uri = _BASE + "NonexistentTenant"
    status = 404
    title = "Nonexistent tenant"


class LdContextNotAvailable(NgsiLdError):
    type_uri = _BASE + "LdContextNotAvailable"
    status = 504
    title = "@context not available"


class InternalError(NgsiLdError):
    pass


class NotAcceptable(NgsiLdError):
    """406: the Accept header names no representation the broker can produce."""

    type_uri = _BASE + "NotAcceptable"
    status = 406
    title = "Not acceptable"


class UnsupportedMediaType(NgsiLdError):
    type_uri = _BASE + "UnsupportedMediaType"
    status = 415
    title = "Unsupported media type"


class PayloadTooLarge(NgsiLdError):
    type_uri = _BASE + "PayloadTooLarge"
    status = 413
    title = "Payload too large"


class MethodNotAllowed(NgsiLdError):
    type_uri = _BASE + "MethodNotAllowed"
    status = 405
    title = "Method not allowed"


class RequestTimeout(NgsiLdError):
    """408: the request body did not arrive within the read timeout (NGSI-LD defines no type for
    it; named like the other HTTP-derived types here). The connection is closed after it."""

    type_uri = _BASE + "RequestTimeout"
    status = 408
    title = "Request timeout"
    closes_connection = True


class ServiceUnavailable(NgsiLdError):
    """503: a dependency (the database) is unreachable for now; ``Retry-After`` says when to try
    again. Nothing of the request was stored unless its answer said so before."""

    type_uri = _BASE + "ServiceUnavailable"
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


class Unauthorized(NgsiLdError):
    """401: no valid credentials (RFC 6750). Not in GS CIM 009's table, which defines no
    authentication errors; the name follows the HTTP status. ``error`` is the RFC 6750 §3.1
    code for WWW-Authenticate (None when no credentials were sent at all)."""

    type_uri = _BASE + "Unauthorized"
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token", **extra: Any) -> None:
        super().__init__(detail, **extra)
        challenge = 'Bearer realm="city-os"'
        if error is not None:
            # RFC 6750 §3: printable ASCII only, so a detail can never break the header.
            printable = "".join(c if " " <= c <= "~" else "?" for c in detail)
            quoted = printable.replace("\\", "\\\\").replace('"', '\\"')
            challenge += f', error="{error}", error_description="{quoted}"'
        self.headers["WWW-Authenticate"] = challenge


class AccessDenied(NgsiLdError):
    """403: a valid caller without the right. GS CIM 009 has no such type; AccessDenied is the
    one Stellio uses, so clients of both see one URI."""

    type_uri = _BASE + "AccessDenied"
    status = 403
    title = "Access denied"


class TooManyRequests(NgsiLdError):
    """429: the client's rate limit is spent; ``retry_after`` seconds until the next request
    is accepted (Retry-After, RFC 9110 §10.2.3)."""

    type_uri = _BASE + "TooManyRequests"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after)
