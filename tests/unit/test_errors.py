"""Every NgsiLdError subclass renders the ProblemDetails body its NGSI-LD type defines."""

from __future__ import annotations

import pytest

from city_os import errors

BASE = "https://uri.etsi.org/ngsi-ld/errors/"

EXPECTED = {
    errors.InvalidRequest: (400, "InvalidRequest"),
    errors.BadRequestData: (400, "BadRequestData"),
    errors.TooManyResults: (403, "TooManyResults"),
    errors.AlreadyExists: (409, "AlreadyExists"),
    errors.OperationNotSupported: (422, "OperationNotSupported"),
    errors.ResourceNotFound: (404, "ResourceNotFound"),
    errors.NonexistentTenant: (404, "NonexistentTenant"),
    errors.LdContextNotAvailable: (504, "LdContextNotAvailable"),
    errors.InternalError: (500, "InternalError"),
    errors.NotAcceptable: (406, "NotAcceptable"),
    errors.UnsupportedMediaType: (415, "UnsupportedMediaType"),
    errors.PayloadTooLarge: (413, "PayloadTooLarge"),
    errors.MethodNotAllowed: (405, "MethodNotAllowed"),
    errors.RequestTimeout: (408, "RequestTimeout"),
    errors.ServiceUnavailable: (503, "ServiceUnavailable"),
    errors.Unauthorized: (401, "Unauthorized"),
    errors.AccessDenied: (403, "AccessDenied"),
    errors.TooManyRequests: (429, "TooManyRequests"),
}

_REQUIRED: dict[type, dict[str, object]] = {errors.TooManyRequests: {"retry_after": 3}}


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_error_class_is_pinned() -> None:
    known = {c for c in _subclasses(errors.NgsiLdError) if c.__module__ == "city_os.errors"}
    assert known == set(EXPECTED)


@pytest.mark.parametrize(("cls", "expected"), list(EXPECTED.items()), ids=lambda v: str(v))
def test_problem_body(cls: type[errors.NgsiLdError], expected: tuple[int, str]) -> None:
    status, name = expected
    err = cls("what went wrong", entityId="urn:x:1", **_REQUIRED.get(cls, {}))  # type: ignore[arg-type]
    assert err.problem() == {
        "type": BASE + name,
        "title": cls.title,
        "status": status,
        "detail": "what went wrong",
        "entityId": "urn:x:1",
    }


def test_service_unavailable_says_when_to_retry() -> None:
    err = errors.ServiceUnavailable("the database is unreachable", retry_after=3)
    assert err.headers == {"Retry-After": "3"}
    assert errors.BadRequestData("x").headers == {}


def test_unauthorized_challenge() -> None:
    assert errors.Unauthorized("none sent", error=None).headers == {
        "WWW-Authenticate": 'Bearer realm="city-os"'
    }
    err = errors.Unauthorized('the token "x" expired')
    assert err.headers["WWW-Authenticate"] == (
        'Bearer realm="city-os", error="invalid_token",'
        ' error_description="the token \\"x\\" expired"'
    )


def test_too_many_requests_retry_after() -> None:
    assert errors.TooManyRequests("slow down", retry_after=2).headers == {"Retry-After": "2"}
