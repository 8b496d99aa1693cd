"""The pure projection of a stored entity to the key-values document a schema validates."""

from __future__ import annotations

from typing import Any

from city_os.core.contexts import bundled_documents
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import EntityRecord
from city_os.registry.projection import Failure, invalid_entity, key_values
from city_os.registry.validation import Violation

NS = "https://example.org/ns#"


def _terms() -> TermMap:
    return TermMap(
        {"Shelter": NS + "Shelter", "name": NS + "name", "when": NS + "when"}, bundled_documents()
    )


def test_projection() -> None:
    record = EntityRecord(
        id="urn:ngsi-ld:Shelter:1",
        types=[NS + "Other", NS + "Shelter"],
        attrs={
            NS + "name": [{"type": "Property", "value": "x"}],
            NS + "when": [
                {
                    "type": "Property",
                    "value": {"@type": "DateTime", "@value": "2026-01-01T00:00:00Z"},
                }
            ],
            NS + "ref": [{"type": "Relationship", "object": "urn:ngsi-ld:X:1"}],
        },
        scopes=["/a"],
        created_at="2026-01-01T00:00:00Z",
        modified_at="2026-01-01T00:00:00Z",
        expires_at="2030-01-01T00:00:00Z",
    )
    doc: dict[str, Any] = key_values(record, NS + "Shelter", _terms())
    assert doc == {
        "id": "urn:ngsi-ld:Shelter:1",
        "type": "Shelter",  # the schema's own type only
        "name": "x",
        "when": "2026-01-01T00:00:00Z",  # value objects become plain values
        NS + "ref": "urn:ngsi-ld:X:1",  # no term in the schema's context: the IRI
    }  # no scope, no expiresAt


def test_error_lists_every_violation() -> None:
    violations = [Violation(f"/a{i}", f"m{i}", "type") for i in range(7)]
    err = invalid_entity("urn:x:1", [Failure("Shelter", 2, violations)])
    body = err.problem()
    assert body["status"] == 400 and body["type"].endswith("BadRequestData")
    assert [v["pointer"] for v in body["violations"]] == [f"/a{i}" for i in range(7)]
    assert body["detail"].startswith(
        "entity urn:x:1 does not match the schema of Shelter (version 2): /a0: m0"
    )
    assert body["detail"].endswith("and 2 more")
