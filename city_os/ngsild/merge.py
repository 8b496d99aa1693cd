"""Pure attribute-level write semantics on the stored entity form (§5.6).

Layer: ngsild/. Each function takes the current attributes (``Attrs``) and a parsed fragment and
mutates a copy's worth of state in place, returning what changed; the store then writes the result
in one statement. Instances are matched by ``datasetId`` (``None`` = the default instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from city_os.errors import BadRequestData
from city_os.ngsild.entity import ATTRIBUTE_MEMBERS, VALUE_KEY, Attrs, Instance


@dataclass
class Outcome:
    """Attributes touched (expanded IRIs) and the ones refused, with a reason each."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)


def _index(instances: list[Instance], dataset_id: str | None) -> int:
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return -1


def _keep_created(old: Instance, new: Instance) -> Instance:
    if "createdAt" in old:
        new["createdAt"] = old["createdAt"]
    return new


def append(current: Attrs, fragment: Attrs, *, overwrite: bool) -> Outcome:
    """POST /entities/{id}/attrs: add attributes; replace existing instances unless noOverwrite."""
    out = Outcome()
    for iri, instances in fragment.items():
        existing = current.setdefault(iri, [])
        changed = False
        for inst in instances:
            i = _index(existing, inst.get("datasetId"))
            if i < 0:
                existing.append(inst)
                changed = True
            elif overwrite:
                existing[i] = _keep_created(existing[i], inst)
                changed = True
        if changed:
            out.updated.append(iri)
        else:
            out.not_updated.append((iri, "attribute exists and noOverwrite was requested"))
    return out


def update_existing(current: Attrs, fragment: Attrs) -> Outcome:
    """PATCH /entities/{id}/attrs: replace matching instances, add the others (as the ETSI
    suite for v1.9.1 expects: 011_01_03, 558_01_04); an NGSI-LD Null deletes an instance."""
    out = Outcome()
    for iri, instances in fragment.items():
        existing = current.get(iri)
        changed = False
        for inst in instances:
            i = -1 if existing is None else _index(existing, inst.get("datasetId"))
            if existing is None or i < 0:
                if not _is_null(inst):
                    current.setdefault(iri, []).append(inst)
                    existing = current[iri]
                    changed = True
                continue
            if _is_null(inst):  # NGSI-LD Null deletes the instance (§5.6.2)
                del existing[i]
                if not existing:
                    del current[iri]
                    existing = None
            else:
                existing[i] = _keep_created(existing[i], inst)
            changed = True
        if changed:
            out.updated.append(iri)
        else:
            out.not_updated.append((iri, "there is no such attribute to delete"))
    return out


def merge_instance(
    old: Instance, patch: Instance, now: str, *, merge_values: bool = True
) -> Instance:
    """Merge a fragment into one instance: members replace, sub-attributes merge, and a JSON
    object ``value`` is merge-patched (RFC 7396) only with ``merge_values`` — Merge Entity
    (§5.6.17, §5.6.20); Partial Attribute Update (§5.6.4) replaces it (docs/interoperability.md).
    """
    merged = dict(old)
    if (
        patch.get("type")
        and patch["type"] != old.get("type")
        and VALUE_KEY.get(patch["type"]) in patch
    ):
        # A change of attribute type replaces the value member too.
        merged.pop(VALUE_KEY.get(old.get("type", ""), ""), None)
        merged["type"] = patch["type"]
    for key, value in patch.items():
        if key in ("createdAt", "modifiedAt", "type"):
            continue
        if key in ATTRIBUTE_MEMBERS:
            if value is None:
                merged.pop(key, None)
            elif (
                merge_values
                and key == "value"
                and merged.get("type", "Property") == "Property"  # a geometry is replaced whole
                and isinstance(value, dict)
                and isinstance(old.get(key), dict)
            ):
                merged[key] = json_merge_patch(old[key], value)
            else:
                merged[key] = value
        elif isinstance(value, dict) and isinstance(old.get(key), dict):
            if _is_null(value):
                merged.pop(key, None)
            else:
                merged[key] = merge_instance(old[key], value, now, merge_values=merge_values)
        elif isinstance(value, dict) and _is_null(value):
            merged.pop(key, None)
        else:
            merged[key] = value
    merged["modifiedAt"] = now
    return merged


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 on a compound Property value: null removes a key, objects merge recursively."""
    if not isinstance(patch, dict) or "@value" in patch or "@type" in patch:
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None or value == "urn:ngsi-ld:null":
            out.pop(key, None)
        else:
            out[key] = json_merge_patch(out.get(key), value)
    return out


def _is_null(inst: Instance) -> bool:
    kind = inst.get("type", "Property")
    return VALUE_KEY.get(kind, "value") in inst and inst[VALUE_KEY.get(kind, "value")] is None


def partial_update(current: Attrs, iri: str, patch: Instance, now: str) -> bool:
    """PATCH /entities/{id}/attrs/{attrId}: False when the attribute/instance is missing."""
    existing = current.get(iri)
    if not existing:
        return False
    i = _index(existing, patch.get("datasetId"))
    if i < 0:
        return False
    kind = existing[i].get("type", "Property")
    if patch.get("type") not in (None, kind):
        raise BadRequestData(f"the attribute is a {kind}, not a {patch['type']}")
    if any(patch.get(k, 0) is None for k in VALUE_KEY.values()):
        del existing[i]  # NGSI-LD Null deletes the instance
        if not existing:
            del current[iri]
        return True
    existing[i] = merge_instance(existing[i], patch, now, merge_values=False)
    return True


def replace_attribute(current: Attrs, iri: str, inst: Instance) -> bool:
    """PUT /entities/{id}/attrs/{attrId}: False when the attribute/instance is missing."""
    existing = current.get(iri)
    if not existing:
        return False
    i = _index(existing, inst.get("datasetId"))
    if i < 0:
        return False
    existing[i] = _keep_created(existing[i], inst)
    return True


def merge_patch(current: Attrs, fragment: Attrs, now: str) -> list[str]:
    """PATCH /entities/{id} (§5.6.17): merge each attribute; a null value deletes it."""
    changed: list[str] = []
    for iri, instances in fragment.items():
        existing = current.get(iri)
        for inst in instances:
            ds = inst.get("datasetId")
            i = -1 if existing is None else _index(existing, ds)
            if _is_null(inst):
                if existing is not None and i >= 0:
                    del existing[i]
                    if not existing:
                        del current[iri]
                    changed.append(iri)
                continue
            if existing is None or i < 0:
                current.setdefault(iri, []).append(inst)
                existing = current[iri]
            else:
                existing[i] = merge_instance(existing[i], inst, now)
            changed.append(iri)
    return list(dict.fromkeys(changed))


def delete_attribute(current: Attrs, iri: str, dataset_id: str | None, delete_all: bool) -> bool:
    """DELETE /entities/{id}/attrs/{attrId}: False when nothing matched."""
    existing = current.get(iri)
    if not existing:
        return False
    if delete_all:
        del current[iri]
        return True
    i = _index(existing, dataset_id)
    if i < 0:
        return False
    del existing[i]
    if not existing:
        del current[iri]
    return True


def geometries(attrs: Attrs) -> list[tuple[str, str, dict[str, Any]]]:
    """(attribute IRI, datasetId or '', GeoJSON) of every GeoProperty instance."""
    out = []
    for iri, instances in attrs.items():
        for inst in instances:
            if inst.get("type") == "GeoProperty" and isinstance(inst.get("value"), dict):
                out.append((iri, inst.get("datasetId") or "", inst["value"]))
    return out
