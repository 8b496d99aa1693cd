"""v2 notifications: what the notifier sends for a subscription made through /v2/subscriptions.

Layer: ngsiv2/ (pure; plugged into notifier/render.py as the "ngsiv2" face). The body follows
``attrsFormat``: ``normalized``, ``keyValues``, ``values`` (``{"subscriptionId", "data"}``), the
``simplified*`` forms (the entity alone) or ``legacy`` (NGSIv1 ``contextResponses``), projected by
``attrs``/``exceptAttrs`` and ``metadata``. Headers carry ``Fiware-Service``,
``Fiware-ServicePath``, ``Ngsiv2-AttrsFormat`` and a ``Fiware-Correlator``. ``httpCustom`` /
``mqttCustom`` add their ``headers`` and may replace the body by a ``payload`` text or a ``json``
template; ``${id}``, ``${type}``, ``${service}``, ``${servicePath}`` and ``${<attribute>}`` are
substituted (a missing attribute is the empty string, as in Orion) and a ``payload`` is
percent-decoded (v2 forbids ``"`` ``(`` … in it, so clients send ``%22`` ``%28``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import orjson

from city_os.ngsild.representation import EntityRecord
from city_os.ngsiv2.ids import v2_id
from city_os.ngsiv2.subscriptions import v2_subscription_id
from city_os.ngsiv2.translate import Output, entity_to_v2, v2_attrs
from city_os.notifier.render import View

_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


def _projected(record: EntityRecord, notification: dict[str, Any], terms: Any) -> EntityRecord:
    if "exceptAttrs" not in notification:
        return record
    dropped = set(notification["exceptAttrs"])
    attrs = {k: v for k, v in record.attrs.items() if terms.compact_attr(k) not in dropped}
    return replace(record, attrs=attrs)


def _legacy(entity: dict[str, Any]) -> dict[str, Any]:
    attributes = [
        {
            "name": name,
            "type": attr["type"],
            "value": attr["value"],
            **(
                {"metadatas": [{"name": m, **v} for m, v in attr["metadata"].items()]}
                if attr["metadata"]
                else {}
            ),
        }
        for name, attr in entity.items()
        if name not in ("id", "type")
    ]
    element = {
        "attributes": attributes,
        "type": entity["type"],
        "isPattern": "false",
        "id": entity["id"],
    }
    return {"contextElement": element, "statusCode": {"code": "200", "reasonPhrase": "OK"}}


def _substitute(text: str, values: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        value = values.get(m.group(1), "")
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    return _TEMPLATE.sub(one, text)


def _json_template(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        whole = _TEMPLATE.fullmatch(template)
        if whole:  # "${attr}" alone keeps the JSON type of the value
            return values.get(whole.group(1), "")
        return _substitute(template, values)
    if isinstance(template, list):
        return [_json_template(t, values) for t in template]
    if isinstance(template, dict):
        return {k: _json_template(v, values) for k, v in template.items()}
    return template


def render(
    view: View,
    subscription_id: str,
    nid: str,
    records: list[EntityRecord],
    trigger: str | None,
) -> tuple[str, dict[str, str], bytes]:
    """(notification id, headers, body) of one v2 notification."""
    sub = view.face_doc["v2"]
    notification = sub["notification"]
    fmt = notification.get("attrsFormat", "normalized")
    out = Output(
        attrs=tuple(notification["attrs"]) if notification.get("attrs") else None,
        metadata=tuple(notification["metadata"]) if "metadata" in notification else None,
        format={
            "keyValues": "keyValues",
            "values": "values",
            "simplifiedKeyValues": "keyValues",
        }.get(fmt, "normalized"),  # type: ignore[arg-type]
    )
    shown = [_projected(r, notification, view.terms) for r in records[:1]]
    entities = [entity_to_v2(r, view.terms, out) for r in shown]
    sid = v2_subscription_id(subscription_id)
    body: Any
    if fmt == "legacy":
        body = {
            "subscriptionId": sid,
            "originator": "localhost",
            "contextResponses": [_legacy(e) for e in entities],
        }
    elif fmt.startswith("simplified"):
        body = entities[0] if entities else {}
    else:
        body = {"subscriptionId": sid, "data": entities}
    scope = shown[0].scopes[0] if shown and shown[0].scopes else "/"
    headers = {
        "Content-Type": "application/json",
        "Ngsiv2-AttrsFormat": fmt,
        "Fiware-Correlator": nid.rsplit(":", 1)[1],
        "Fiware-ServicePath": scope,
    }
    if view.tenant:
        headers["Fiware-Service"] = view.tenant
    custom = notification.get("httpCustom") or notification.get("mqttCustom")
    if custom and shown:
        record = shown[0]
        values: dict[str, Any] = {
            n: a["value"] for n, a in v2_attrs(record, view.terms, Output()).items()
        }
        values.update(
            id=v2_id(record.id),
            type=view.terms.compact_type(record.types[0]),
            service=view.tenant,
            servicePath=scope,
        )
        for key, value in (custom.get("headers") or {}).items():
            headers[key] = _substitute(str(value), values)
        if "payload" in custom and custom["payload"] is not None:
            headers.setdefault("Content-Type", "text/plain")
            if "Content-Type" not in (custom.get("headers") or {}):
                headers["Content-Type"] = "text/plain"
            # v2 forbids " ' ( ) … in payloads, so clients percent-encode them; Orion decodes
            text = unquote(_substitute(str(custom["payload"]), values))
            return nid, headers, text.encode()
        if "json" in custom:
            return nid, headers, orjson.dumps(_json_template(custom["json"], values))
    return nid, headers, orjson.dumps(body)
