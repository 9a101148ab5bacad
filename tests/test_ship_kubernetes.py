"""The Kubernetes manifests of every HTTP render: Kubernetes' own OpenAPI schemas (kubernetes-validate,
strict, oldest and newest supported version), and what no schema knows (hardening, probes with a Host
header the server accepts, every secret setting from a Secret, selectors that match).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from answer_space import name_of
from shipped import Render, settings_env

# The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is required (test dependency group)", pytrace=False)
    return kubernetes_validate


def test_kubernetes_manifests_validate_against_kubernetes_schemas(renders: list[Render]) -> None:
    kv = _kubernetes_validate()
    seen: dict[str, str] = {}
    failures = []
    for r in renders:
        folder = r.path / "deploy/kubernetes"
        if not r.has_http:
            continue
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = set(kustomization["resources"])
        present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert listed == present, f"kustomization.yaml lists {sorted(listed)}, the folder has {sorted(present)}"
        for name in sorted(listed):
            text = (folder / name).read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                continue
            seen[digest] = name
            for version in KUBERNETES_VERSIONS:
                try:
                    kv.validate(yaml.safe_load(text), version, strict=True)
                except kv.ValidationError as error:
                    failures.append(f"{name_of(r.answers)}/{name} (k8s {version}): {str(error)[:300]}")
    assert not failures, failures[:5]
    assert len(seen) > 10


def _documents(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        doc["kind"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml"))
        if doc.get("kind") != "Kustomization"
    }


def test_kubernetes_deployment_is_hardened_probed_and_reads_secrets_from_a_secret(renders: list[Render]) -> None:
    for r in renders:
        if not r.has_http:
            continue
        folder = r.path / "deploy/kubernetes"
        docs = _documents(folder)
        deployment, config = docs["Deployment"], docs["ConfigMap"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # Hardening
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"])
        # Probes: the right paths, on the named port, with a Host header the server accepts.
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path and get["port"] in port_names
            hosts = [h["value"] for h in get.get("httpHeaders", []) if h["name"].lower() == "host"]
            accepted = {"localhost", "127.0.0.1", *config["data"].get(f"{r.prefix}ALLOWED_HOSTS", "").split()}
            assert hosts and hosts[0] in accepted, f"{probe}: the kubelet's Host (the pod IP) would be refused"
        assert port_names["http"] == int(config["data"][f"{r.prefix}PORT"])
        # Settings: ConfigMap keys are real settings; every secret setting is a secretKeyRef.
        settings, secrets = settings_env(r.path / "src/my_server/settings.py", r.prefix)
        unknown = [key for key in config["data"] if not key.startswith("OTEL_") and key not in settings]
        assert not unknown, f"not settings of the server: {unknown}"
        assert config["data"][f"{r.prefix}AUTH_MODE"] == "idp" and config["data"][f"{r.prefix}HOST"] == "0.0.0.0"
        from_secret = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        expected = set(secrets)
        if r.answers["trace_backend"] == "langfuse":
            expected |= {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"}
        if r.answers["rate_limit_storage"] == "redis":
            expected.add(f"{r.prefix}RATE_LIMIT_STORAGE_URL")
        assert expected <= from_secret.keys(), (
            f"{name_of(r.answers)}: from a Secret: {sorted(expected - from_secret.keys())}"
        )
        assert not expected & config["data"].keys(), "secrets never in the ConfigMap"
        assert {ref["name"] for ref in from_secret.values()} == {"my-server"}
        # Service, autoscaler, disruption budget point at this Deployment's pods.
        service = docs["Service"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
        hpa = docs["HorizontalPodAutoscaler"]
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        if r.answers["rate_limit_storage"] == "redis":
            assert hpa["spec"]["minReplicas"] >= 2
        assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert [image["name"] for image in kustomization["images"]] == [container["image"]]
