"""The ``k8s`` target: manifests that validate against the Kubernetes schemas, strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from loopml.errors import InvalidArgument
from loopml.packaging.k8s import MANIFEST_FILES, dns_label, k8s_manifests, write_k8s_manifests

# An older release still in wide use, and the newest the installed validator ships.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def _written(tmp_path: Path, **options: Any) -> dict[str, dict[str, Any]]:
    out = tmp_path / "k8s"
    out.mkdir()
    write_k8s_manifests(out, **options)
    return {name: yaml.safe_load((out / name).read_text()) for name in MANIFEST_FILES}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(tmp_path: Path, version: str) -> None:
    docs = _written(
        tmp_path,
        name="churn",
        image="registry.example/churn:3",
        model_version="3",
    )
    assert sorted(docs) == sorted(MANIFEST_FILES)
    for doc in docs.values():
        kubernetes_validate.validate(doc, version, strict=True)


def test_deployment_has_probes_resources_and_runs_as_non_root(tmp_path: Path) -> None:
    docs = _written(tmp_path, name="churn", image="churn:3", replicas=3)
    deployment = docs["deployment.yaml"]
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["image"] == "churn:3"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["OMP_NUM_THREADS"] == "1"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_service_and_autoscaler(tmp_path: Path) -> None:
    docs = _written(tmp_path, name="churn", image="churn:3", max_replicas=7, cpu_target=60)
    service = docs["service.yaml"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = docs["deployment.yaml"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = docs["hpa.yaml"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "churn",
    }
    assert hpa["spec"]["maxReplicas"] == 7
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == 60


def test_default_image_is_tagged_with_the_model_version(tmp_path: Path) -> None:
    docs = _written(tmp_path, name="churn", model_version="12")
    container = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "churn:12"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"name": "Churn_Model"}, "'Churn_Model'"),
        ({"cpu_limit": "lots"}, "'lots'"),
        ({"replicas": 0}, "replicas (0)"),
        ({"cpu_target": 150}, "150"),
    ],
)
def test_bad_options_are_refused_naming_the_value(options: dict[str, Any], named: str) -> None:
    args: dict[str, Any] = {"name": "churn", "image": "churn:1", **options}
    with pytest.raises(InvalidArgument) as info:
        k8s_manifests(**args)
    assert named in info.value.message


def test_dns_label() -> None:
    assert dns_label("Churn_Model v2") == "churn-model-v2"
    assert dns_label("___") == "model"
    assert len(dns_label("x" * 100)) == 63
