"""deploy/ checked by the tools that read it, where the package registries have them.

- PromQL: promtool (Debian's prometheus package, extracted into .venv/bin by
  scripts/bootstrap.sh) checks the alert rules and the scrape configuration, runs the rules' unit
  tests (deploy/prometheus/alerts.test.yml: each alert fires on trouble after its ``for:``) and
  parses every query of the Grafana dashboard.
- nginx: crossplane (PyPI nginx-crossplane, strict) parses deploy/nginx/nginx.conf against
  nginx's directive table: unknown directives, directives in the wrong block and wrong argument
  counts are errors. ``nginx -t`` itself cannot be run: the only nginx the registries have is
  Debian's 1.22, which refuses the ``resolve`` parameter of ``server`` (open-source nginx since
  1.27.3; the compose stack runs 1.27.5) before checking anything else.
- Kustomize: ``kustomize build`` or ``kubectl kustomize`` where installed (no registry has
  kustomize: none in PyPI, npm or Debian 12); its output is checked against the Kubernetes
  schemas and must equal the merge test_deploy.py performs without it.

A check whose tool is missing is skipped with the reason; each check also shows that it refuses
a broken input.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import crossplane
import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.test_deploy import DEPLOY, K8S, K8S_VERSION, _base, _overlay

PROMETHEUS = DEPLOY / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool") or str(Path(sys.executable).parent / "promtool")
    if not Path(found).is_file():
        pytest.skip("promtool not found: scripts/bootstrap.sh extracts it from Debian's package")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_alert_rules_pass_promtool() -> None:
    result = _run(_promtool(), "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_fire_on_trouble_and_not_before() -> None:
    result = _run(_promtool(), "test", "rules", str(PROMETHEUS / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {t["alertname"] for t in _yaml(PROMETHEUS / "alerts.test.yml")["tests"][0][
        "alert_rule_test"]}  # fmt: skip
    assert {"CityOsOutboxLag", "CityOsRelayDown", "CityOsNotificationFailures",
            "CityOsHigh5xxRate", "CityOsHighP99Latency"} <= tested  # fmt: skip


def test_scrape_configuration_passes_promtool() -> None:
    # --syntax-only: the rule file is named by its path inside the Prometheus container.
    config = str(PROMETHEUS / "prometheus.yml")
    result = _run(_promtool(), "check", "config", "--syntax-only", config)
    assert result.returncode == 0, result.stdout + result.stderr


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _check_queries(tmp_path: Path, queries: list[str]) -> subprocess.CompletedProcess[str]:
    """promtool's PromQL parser over ``queries``, as recording rules of a scratch rule file."""
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return _run(_promtool(), "check", "rules", str(path))


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "city-os.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    result = _check_queries(tmp_path, queries)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_refuses_broken_promql(tmp_path: Path) -> None:
    result = _check_queries(tmp_path, ["sum(rate(cityos_http_requests_total[5m])"])
    assert result.returncode != 0
    assert "unclosed left parenthesis" in result.stdout + result.stderr


def _nginx_errors(path: Path) -> list[str]:
    parsed = crossplane.parse(
        str(path), strict=True, check_ctx=True, check_args=True, single=True, catch_errors=True
    )
    return [e["error"] for e in parsed["errors"]]


def test_nginx_configuration_parses_strictly() -> None:
    assert _nginx_errors(DEPLOY / "nginx" / "nginx.conf") == []


def test_the_nginx_check_refuses_a_broken_configuration(tmp_path: Path) -> None:
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    broken = tmp_path / "nginx.conf"
    broken.write_text(
        text.replace("least_conn;", "least_conn on;")
        .replace("keepalive 64;", "keepalve 64;")
        .replace("proxy_buffering off;", "proxy_buffering;")
    )
    errors = _nginx_errors(broken)
    assert any('"least_conn"' in e for e in errors), errors
    assert any('unknown directive "keepalve"' in e for e in errors), errors
    assert any('"proxy_buffering"' in e for e in errors), errors


def _kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.skip("neither kustomize nor kubectl is installed (no package registry has them)")


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    result = _run(*_kustomize_command(), str(directory))
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _labelled(found: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """The base's ``labels`` (without selectors) added to every resource, as kustomize does."""
    pairs: dict[str, str] = {}
    for entry in _yaml(K8S / "base" / "kustomization.yaml").get("labels", []):
        assert not entry.get("includeSelectors"), "selectors would change too"
        pairs.update(entry["pairs"])
    out = {}
    for key, doc in found.items():
        metadata = {**doc["metadata"], "labels": {**doc["metadata"].get("labels", {}), **pairs}}
        out[key] = {**doc, "metadata": metadata}
    return out


@pytest.mark.parametrize("variant", ["base", "city", "prefecture"])
def test_kustomize_build_is_valid_and_what_the_merge_test_checks(variant: str) -> None:
    directory = K8S / "base" if variant == "base" else K8S / "overlays" / variant
    built = {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(directory)}
    for key, doc in built.items():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{variant} {key}: {err}")
    merged = _labelled(_base() if variant == "base" else _overlay(variant))
    assert built == merged


def test_kustomize_refuses_a_patch_of_nothing(tmp_path: Path) -> None:
    command = _kustomize_command()
    shutil.copytree(K8S / "base", tmp_path / "base")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    kustomization = {"resources": ["../base"], "patches": [{"path": "patch.yaml"}]}
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cityos-apx"}}
    (overlay / "patch.yaml").write_text(yaml.safe_dump(patch))
    result = _run(*command, str(overlay))
    assert result.returncode != 0
    assert "cityos-apx" in result.stderr
