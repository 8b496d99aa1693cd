"""v2 identifiers and names <-> NGSI-LD identifiers (pure).

Layer: ngsiv2/. NGSI-LD entity ids are URIs; v2 ids are any string without the v2 forbidden
characters. A v2 id that is already a URI is stored as it is; any other id is stored under the
prefix ``urn:ngsiv:`` and shown without it through v2, so ``Room1`` is ``urn:ngsiv:Room1`` in
NGSI-LD and ``urn:ngsi-ld:Shelter:1`` is the same in both APIs. The prefix has no digits nor
``-``, so an unanchored v2 ``idPattern`` such as ``.*[1-5]`` cannot match inside it.
"""

from __future__ import annotations

import re

from city_os.errors import BadRequestData
from city_os.ngsild.entity import is_uri

V2_ID_PREFIX = "urn:ngsiv:"
MAX_ID_CHARS = 256
# Orion: forbidden in any request field (< > " ' = ; ( )); identifiers also exclude white space
# and the URL delimiters ? / # & (they name URL path segments).
FORBIDDEN = re.compile(r"[<>\"'=;()]")
_ID_FORBIDDEN = re.compile(r"[<>\"'=;()\s?/#&\x00-\x1f\x7f]")


def check_v2_name(value: object, what: str) -> str:
    """An entity id, type, attribute or metadata name under the v2 syntax restrictions."""
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise BadRequestData(f"{what} is longer than {MAX_ID_CHARS} characters")
    if _ID_FORBIDDEN.search(value):
        raise BadRequestData(f"Invalid characters in {what}: {value!r}")
    return value


def ld_id(v2_id: str) -> str:
    """The NGSI-LD id of a v2 id."""
    return v2_id if is_uri(v2_id) and not v2_id.startswith(V2_ID_PREFIX) else V2_ID_PREFIX + v2_id


def v2_id(entity_id: str) -> str:
    """The v2 id of a stored (NGSI-LD) id."""
    return entity_id[len(V2_ID_PREFIX) :] if entity_id.startswith(V2_ID_PREFIX) else entity_id


def id_pattern(pattern: str) -> str:
    """A v2 ``idPattern`` (on v2 ids) as a pattern on stored ids: an anchored pattern may also
    match after the ``urn:ngsiv:`` prefix."""
    if pattern.startswith("^"):
        return "^(?:" + V2_ID_PREFIX + ")?(?:" + pattern[1:] + ")"
    return pattern
