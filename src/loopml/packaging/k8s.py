"""The ``k8s`` target: Deployment, Service and HorizontalPodAutoscaler manifests.

The Deployment runs the image built from the ``docker`` target as a non-root user, with a
readiness probe on ``/health``, a liveness probe on ``/ping``, resource requests and limits
and one math thread per process; the Service exposes port 80 inside the cluster; the
autoscaler (``autoscaling/v2``) scales on CPU.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument
from loopml.packaging.bundle import DEFAULT_PORT
from loopml.packaging.docker import CONTAINER_UID

__all__ = ["MANIFEST_FILES", "dns_label", "k8s_manifests", "write_k8s_manifests"]

MANIFEST_FILES = ("deployment.yaml", "service.yaml", "hpa.yaml")

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


def dns_label(text: str) -> str:
    """``text`` as a Kubernetes object name: ``Churn_Model v2`` -> ``churn-model-v2``."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return label or "model"


def k8s_manifests(
    *,
    name: str,
    image: str,
    replicas: int = 2,
    cpu_request: str = "250m",
    cpu_limit: str = "1",
    memory_request: str = "512Mi",
    memory_limit: str = "1Gi",
    min_replicas: int | None = None,
    max_replicas: int = 5,
    cpu_target: int = 70,
    model_version: str = "",
) -> dict[str, dict[str, Any]]:
    """The three manifests as dicts, by file name (pure: the tests validate them)."""
    if not _LABEL.match(name):
        raise InvalidArgument(
            f"name {name!r} is not a valid Kubernetes name: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    if not image.strip() or any(c.isspace() for c in image):
        raise InvalidArgument(f"image {image!r} must be a non-empty image reference")
    for option, quantity in (
        ("cpu_request", cpu_request),
        ("cpu_limit", cpu_limit),
        ("memory_request", memory_request),
        ("memory_limit", memory_limit),
    ):
        if not _QUANTITY.match(str(quantity)):
            raise InvalidArgument(
                f"{option} {quantity!r} is not a Kubernetes quantity such as '500m', '1', "
                "'512Mi' or '2Gi'"
            )
    low = replicas if min_replicas is None else min_replicas
    if replicas < 1 or low < 1 or max_replicas < low:
        raise InvalidArgument(
            f"replicas ({replicas}) and min_replicas ({low}) must be at least 1 and "
            f"max_replicas ({max_replicas}) at least min_replicas"
        )
    if not 1 <= cpu_target <= 100:
        raise InvalidArgument(f"cpu_target {cpu_target} must be a percentage from 1 to 100")

    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "loopml"}
    if model_version:
        labels["app.kubernetes.io/version"] = dns_label(model_version)
    selector = {"app.kubernetes.io/name": name}

    def probe(path: str, *, delay: int, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "initialDelaySeconds": delay,
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    container = {
        "name": "model",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "PORT", "value": str(DEFAULT_PORT)},
            {"name": "OMP_NUM_THREADS", "value": "1"},
            {"name": "MKL_NUM_THREADS", "value": "1"},
            {"name": "OPENBLAS_NUM_THREADS", "value": "1"},
            {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        ],
        "readinessProbe": probe("/health", delay=5, period=10, failures=3),
        "livenessProbe": probe("/ping", delay=30, period=20, failures=3),
        "resources": {
            "requests": {"cpu": cpu_request, "memory": memory_request},
            "limits": {"cpu": cpu_limit, "memory": memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": CONTAINER_UID,
                        "runAsGroup": CONTAINER_UID,
                        "fsGroup": CONTAINER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target},
                    },
                }
            ],
        },
    }
    return dict(zip(MANIFEST_FILES, (deployment, service, hpa), strict=True))


def write_k8s_manifests(
    out: Path, *, name: str, image: str | None = None, **options: Any
) -> dict[str, object]:
    """Write the manifests into the empty folder ``out``; returns facts for the result."""
    import yaml

    version = str(options.get("model_version") or "")
    chosen_image = image or f"{name}:{_tag(version)}"
    manifests = k8s_manifests(name=name, image=chosen_image, **options)
    for file_name, manifest in manifests.items():
        (out / file_name).write_text(
            yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False),
            encoding="utf-8",
        )
    return {"name": name, "image": chosen_image, "manifests": list(MANIFEST_FILES)}


def _tag(version: str) -> str:
    """A Docker tag for a model version (``latest`` when there is none)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", version).strip(".-")[:128]
    return tag or "latest"
