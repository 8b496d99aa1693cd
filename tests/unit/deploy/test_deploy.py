"""deploy/ is checked as a machine would read it: docker-compose.yml against the Compose
Specification schema (the copy check-jsonschema ships), the Kubernetes manifests against the
Kubernetes 1.37 schemas (kubernetes-validate, strict: unknown fields are errors), overlays merged
onto the base the way kustomize's strategic merge does for these files, and the Prometheus rules
and the Grafana dashboard against the metrics the code defines. No tool beyond Python packages is
needed; test_deploy_tools.py adds the checks of promtool, crossplane and kustomize
(deploy/README.md, What the tests check).
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from city_os.observability.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.37.0"


def _compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def _compose_errors(doc: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return doc


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert _compose_errors(compose) == []


def test_the_compose_check_refuses_a_broken_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["depends_on"] = {"migrate": {"condition": "whenever"}}
    broken["services"]["relay"]["restrat"] = "always"
    errors = _compose_errors(broken)
    assert any("'depends_on'" in e and "whenever" in e for e in errors), errors
    assert any("'restrat' was unexpected" in e for e in errors), errors


def test_compose_has_the_production_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {"postgres", "kafka", "mosquitto", "migrate", "api", "lb", "relay", "notifier",
                "prometheus", "grafana"}  # fmt: skip
    assert expected <= set(services)
    assert services["postgres"]["image"].startswith("postgis/postgis:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    for name in ("api", "relay", "notifier"):
        after = services[name]["depends_on"]["migrate"]["condition"]
        assert after == "service_completed_successfully", name
    for name, service in services.items():
        if name != "migrate":
            assert "test" in service.get("healthcheck", {}), f"{name} has no health check"
        for other, rule in service.get("depends_on", {}).items():
            assert other in services, (name, other)
            if rule["condition"] == "service_healthy":
                assert "test" in services[other]["healthcheck"], (name, other)


def test_compose_secrets_come_from_files_not_the_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    assert not re.search(r"PASSWORD:\s*\S", text.replace("PASSWORD_FILE", "")), "inline password"
    assert "CITYOS_DATABASE_URL" not in text
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("./secrets/"), name
    assert (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()[1] == "*"
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)


def _metric_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        # A family is named without its suffixes; its series carry them.
        suffixes = ("", "_total", "_bucket", "_count", "_sum", "_created")
        names.update(family.name + suffix for suffix in suffixes)
    return names


_NOTIFIER_METRICS = {"cityos_notifications_pending", "cityos_notifier_queue_depth"}


def _used_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bcityos_[a-z_]+", text))


def test_alert_rules_cover_the_required_alerts_with_real_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {"CityOsOutboxLag", "CityOsRelayDown", "CityOsNotificationFailures",
            "CityOsHigh5xxRate", "CityOsHighP99Latency"} <= set(alerts)  # fmt: skip
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
    known = _metric_names() | _NOTIFIER_METRICS
    used = _used_metrics((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert used and used <= known, used - known


def test_prometheus_scrapes_every_process() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for process in ("api", "relay", "notifier"):
        names = jobs[f"cityos-{process}"]["dns_sd_configs"][0]["names"]
        assert names == [process]
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_grafana_dashboard_is_provisioned_with_real_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "city-os.json").read_text())
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = source["datasources"][0]["uid"]
    assert dashboard["uid"] == "city-os" and len(dashboard["panels"]) >= 10
    known = _metric_names() | _NOTIFIER_METRICS
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            used = _used_metrics(target["expr"])
            assert used and used <= known, (panel["title"], used - known)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base() -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for doc in _documents(K8S / "base" / name):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize applies it to these patches: maps merge, lists of named
    items (containers) merge by name, other values replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged = {i["name"]: i for i in base}
        for item in patch:
            merged[item["name"]] = _merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return patch


def _overlay(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    resources_ = copy.deepcopy(_base())
    kustomization = yaml.safe_load((K8S / "overlays" / name / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    for patch in kustomization["patches"]:
        for doc in _documents(K8S / "overlays" / name / patch["path"]):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key in resources_, f"{name}/{patch['path']} patches nothing: {key}"
            resources_[key] = _merge(resources_[key], doc)
    return resources_


@pytest.mark.parametrize("variant", ["base", "city", "prefecture"])
def test_kubernetes_manifests_follow_the_kubernetes_schemas(variant: str) -> None:
    found = _base() if variant == "base" else _overlay(variant)
    assert len(found) >= 12
    for key, doc in found.items():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{variant} {key}: {err}")


def test_the_kubernetes_check_refuses_a_broken_manifest() -> None:
    deployment = copy.deepcopy(_base()[("Deployment", "cityos-api")])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = (
        "/ready"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kubernetes_has_probes_resources_autoscaling_and_budgets() -> None:
    found = _base()
    for name in ("cityos-api", "cityos-relay", "cityos-notifier"):
        container = found[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert ("PodDisruptionBudget", name) in found
    hpa = found[("HorizontalPodAutoscaler", "cityos-api")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cityos-api"
    job = found[("Job", "cityos-migrate")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    policies = [k for k in found if k[0] == "NetworkPolicy"]
    assert ("NetworkPolicy", "cityos-default-deny") in policies and len(policies) >= 3
    config = found[("ConfigMap", "cityos")]["data"]
    assert not any("PASSWORD" in k and not k.endswith("_FILE") for k in config)
