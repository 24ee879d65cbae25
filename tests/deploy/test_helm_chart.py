"""charts/export-service, linted and rendered by a real Helm binary, then checked object-wise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART, CREDENTIALS, SETTING_NAMES

# The first run may build Helm with `go install` (a few minutes; `make test` builds it before
# pytest starts): allow for it. Each helm command has its own short timeout below.
pytestmark = pytest.mark.timeout(1500)

RELEASE = "vf"
NAMESPACE = "exports"
ALL_ON = [
    "replicaCount=2",
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
    "podDisruptionBudget.enabled=true",
    "bucketLifecycle.enabled=true",
]
Render = Callable[..., dict[str, list[dict[str, Any]]]]


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def render(helm: Path) -> Render:
    """`helm template` with --set values; the objects by kind."""

    def _render(*values: str) -> dict[str, list[dict[str, Any]]]:
        sets = [arg for value in values for arg in ("--set", value)]
        result = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *sets)
        assert result.returncode == 0, result.stderr
        objects: dict[str, list[dict[str, Any]]] = {}
        for document in yaml.safe_load_all(result.stdout):
            if document:
                objects.setdefault(document["kind"], []).append(document)
        return objects

    return _render


def only(objects: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    assert len(objects.get(kind, [])) == 1, f"one {kind}"
    return objects[kind][0]


def settings(objects: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """The data of the settings ConfigMap (the others hold the dashboard, the S3 rules)."""
    others = ("-dashboard", "-bucket-lifecycle")
    (configmap,) = [c for c in objects["ConfigMap"] if not c["metadata"]["name"].endswith(others)]
    data: dict[str, str] = configmap["data"]
    return data


def container(objects: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    containers = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def test_helm_version(helm: Path) -> None:
    from devstack.build import HELM_VERSION

    result = run_helm(helm, "version", "--short")
    assert result.stdout.startswith(HELM_VERSION), result.stdout


@pytest.mark.parametrize("values", [[], ALL_ON], ids=["defaults", "everything-on"])
def test_helm_lint_strict(helm: Path, values: list[str]) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *sets)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_defaults_render_the_core_objects_only(render: Render) -> None:
    objects = render()
    assert set(objects) == {"Deployment", "Service", "ConfigMap", "ServiceAccount"}
    assert only(objects, "Deployment")["spec"]["replicas"] == 1


def test_everything_on_renders_the_optional_objects(render: Render) -> None:
    objects = render(*ALL_ON)
    assert set(objects) == {
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
        "Job",
    }
    assert only(objects, "Deployment")["spec"]["replicas"] == 2
    assert len(objects["ConfigMap"]) == 3  # settings, Grafana dashboard, bucket lifecycle


def test_bucket_lifecycle_rules_follow_the_retention(render: Render) -> None:
    objects = render("bucketLifecycle.enabled=true", "config.STATUS_RETENTION_DAYS=30")
    (rules,) = [c for c in objects["ConfigMap"] if c["metadata"]["name"].endswith("lifecycle")]
    expire = json.loads(rules["data"]["expire.json"])["Rules"]
    assert {r["ID"]: r.get("Expiration") for r in expire} == {
        "abort-incomplete-uploads": None,
        "export-retention": {"Days": 30},
    }
    keep = json.loads(rules["data"]["keep.json"])["Rules"]
    assert [r["ID"] for r in keep] == ["abort-incomplete-uploads"]
    script = only(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--bucket vf-scoring --lifecycle-configuration file:///rules/keep.json" in script
    forever = render("bucketLifecycle.enabled=true", "config.STATUS_RETENTION_DAYS=0")
    (rules,) = [c for c in forever["ConfigMap"] if c["metadata"]["name"].endswith("lifecycle")]
    assert [r["ID"] for r in json.loads(rules["data"]["expire.json"])["Rules"]] == [
        "abort-incomplete-uploads"
    ]


@pytest.mark.parametrize("values", [[], ALL_ON], ids=["defaults", "everything-on"])
def test_deployment(render: Render, values: list[str]) -> None:
    objects = render(*values)
    deployment = only(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    main = container(objects)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert main["livenessProbe"]["httpGet"] == {"path": "/heartbeat", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/heartbeat"
    config = settings(objects)
    assert ports == {"http": int(config["WEB_PORT"])}
    assert config["WEB_HOST"] == "0.0.0.0"
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]["memory"]

    # Kubernetes waits for the running export to end (or time out) before it kills the pod.
    grace = pod["terminationGracePeriodSeconds"]
    assert isinstance(grace, int)
    assert grace > float(config["EXPORT_TIMEOUT_SECONDS"])
    # ...and the worker itself waits that long for it on SIGTERM, within the pod's grace.
    assert float(config["SHUTDOWN_GRACE_SECONDS"]) == float(config["EXPORT_TIMEOUT_SECONDS"])
    assert grace > float(config["SHUTDOWN_GRACE_SECONDS"])


def test_grace_period_follows_the_export_timeout(render: Render) -> None:
    objects = render("export.timeoutSeconds=600", "shutdown.marginSeconds=45")
    assert settings(objects)["EXPORT_TIMEOUT_SECONDS"] == "600"
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 645


def test_runs_non_root_with_a_read_only_root_filesystem(render: Render) -> None:
    objects = render()
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    main = container(objects)
    context = main["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    # ...so Faust's data directory and /tmp are writable volumes.
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert settings(objects)["DATA_DIR"] in mounts
    assert "/tmp" in mounts
    assert pod["automountServiceAccountToken"] is False


def test_settings_come_from_the_configmap_and_are_real_setting_names(render: Render) -> None:
    objects = render(*ALL_ON)
    configmap = next(c for c in objects["ConfigMap"] if "WEB_HOST" in c.get("data", {}))
    data = configmap["data"]
    assert set(data) - SETTING_NAMES == set(), "not a setting in core/settings.py"
    assert all(isinstance(v, str) for v in data.values())
    main = container(objects)
    assert main["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    assert {e["name"] for e in main["env"]} - SETTING_NAMES == set()


def test_credentials_only_as_secret_references(render: Render) -> None:
    objects = render(
        "secretEnv.S3_ACCESS_KEY_ID.secretName=s3-creds",
        "secretEnv.S3_SECRET_ACCESS_KEY.secretName=s3-creds",
    )
    assert "Secret" not in objects, "the chart never holds secret values"
    data = settings(objects)
    assert CREDENTIALS & set(data) == set()
    env = {e["name"]: e for e in container(objects)["env"]}
    assert {"MONGO_URL", "JWT_SECRET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} <= set(env)
    for name, var in env.items():
        assert "value" not in var, f"{name} has a literal value"
        assert set(var["valueFrom"]) == {"secretKeyRef"}
        assert var["valueFrom"]["secretKeyRef"]["name"]
        assert var["valueFrom"]["secretKeyRef"]["key"]
    assert env["S3_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"


def test_an_empty_secret_name_leaves_the_variable_out(render: Render) -> None:
    env = {e["name"] for e in container(render())["env"]}
    assert "S3_ACCESS_KEY_ID" not in env, "default: the pod's AWS identity"
    assert "JWT_PUBLIC_KEY" not in env


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("config.MONGO_URL=mongodb://user:pw@db/", "credential"),
        ("config.S3_SECRET_ACCESS_KEY=abc", "credential"),
        ("config.EXPORT_TIMEOUT_SECONDS=10", "export.timeoutSeconds"),
        ("config.WEB_HOST=127.0.0.1", "set by the chart"),
    ],
)
def test_rendering_refuses_credentials_and_chart_owned_settings_in_config(
    helm: Path, value: str, message: str
) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", value)
    assert result.returncode != 0
    assert message in result.stderr


def test_service_selects_the_pods(render: Render) -> None:
    objects = render()
    service = only(objects, "Service")
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 6066, "targetPort": "http", "protocol": "TCP"}
    ]


def test_service_monitor_scrapes_metrics_with_a_fixed_job_name(render: Render) -> None:
    objects = render(*ALL_ON, "metrics.jobName=vf-exports")
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    service_labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert relabel["job"]["replacement"] == "vf-exports"
    assert "ready" in relabel


def test_prometheus_rule_carries_the_rules_file(render: Render) -> None:
    rules_file = yaml.safe_load((CHART / "alerts" / "export-service.rules.yaml").read_text())
    rule = only(render(*ALL_ON), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == rules_file
    # With another job name, every selector follows it and the annotations stay templates.
    renamed = only(render(*ALL_ON, "metrics.jobName=vf-exports"), "PrometheusRule")
    text = json.dumps(renamed["spec"])
    assert 'job=\\"export-service\\"' not in text
    assert text.count('job=\\"vf-exports\\"') == json.dumps(rules_file).count(
        'job=\\"export-service\\"'
    )
    assert "{{ $labels.topic }}" in text


def test_grafana_dashboard_configmap_carries_the_dashboard(render: Render) -> None:
    objects = render(*ALL_ON)
    (dashboard,) = [c for c in objects["ConfigMap"] if "export-service.json" in c["data"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "export-service.json").read_text("utf-8"))
    assert json.loads(dashboard["data"]["export-service.json"]) == shipped


def test_pod_disruption_budget_selects_the_pods(render: Render) -> None:
    objects = render(*ALL_ON)
    budget = only(objects, "PodDisruptionBudget")
    assert budget["apiVersion"] == "policy/v1"
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["minAvailable"] == 1
    with_max = only(render(*ALL_ON, "podDisruptionBudget.maxUnavailable=1"), "PodDisruptionBudget")
    assert with_max["spec"] == {
        "maxUnavailable": 1,
        "selector": budget["spec"]["selector"],
    }


def test_notes_render(helm: Path, tmp_path: Path) -> None:
    # `helm install --dry-run` wants a cluster here, and `helm template` leaves NOTES.txt out:
    # render it through `tpl` from a copy of the chart.
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "NOTES.txt").rename(chart / "NOTES.txt")
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "NOTES.txt") . | quote }}\n'
    )
    result = run_helm(
        helm,
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--show-only",
        "templates/notes-under-test.yaml",
    )
    assert result.returncode == 0, result.stderr
    notes = yaml.safe_load(result.stdout)["data"]["notes"]
    assert "port-forward svc/vf-export-service 6066:6066" in notes
    assert "MONGO_URL <- secret export-service-mongodb, key url" in notes
    assert "JWT_SECRET <- secret export-service-jwt, key secret" in notes
    assert "S3_ACCESS_KEY_ID" not in notes
    assert "pods get 3660s to stop" in notes


def test_every_top_level_value_is_documented() -> None:
    # A comment right above each key, or above a run of keys it covers (no blank line between).
    lines = (CHART / "values.yaml").read_text("utf-8").splitlines()
    for index, line in enumerate(lines):
        if not line or line[0] in " #-":
            continue
        above = index - 1
        while above >= 0 and lines[above] and lines[above][0] not in " #":
            above -= 1  # another top-level key of the same run
        assert above >= 0, line
        assert lines[above].startswith("#"), f"values.yaml: {line.split(':')[0]} is undocumented"


def test_the_readme_example_values_render(helm: Path, tmp_path: Path) -> None:
    readme = (CHART.parents[1] / "README.md").read_text("utf-8")
    example = re.search(r"```yaml\n(# my-values\.yaml\n.*?)```", readme, re.DOTALL)
    assert example, "README: the Helm example values"
    values = tmp_path / "my-values.yaml"
    values.write_text(example.group(1))
    lint = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    result = run_helm(helm, "template", RELEASE, str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert {"ServiceMonitor", "PrometheusRule", "Deployment"} <= set(kinds)
