"""Render a kustomization directory for the manifest tests, offline.

``render`` uses the real kustomize built into ``kubectl`` (``kubectl kustomize``) when kubectl is
on PATH, which it is on this project's machines.  Debian ships neither kubectl nor kustomize and
PyPI has no working kustomize for Python 3.11, so where kubectl is missing ``render`` falls back
to ``render_minimal``: a small, honest re-implementation of exactly the kustomize features
k8s/ uses, which raises on anything else.  When both are available, the tests compare the two
outputs, so the fallback cannot drift from kustomize unnoticed.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches"}
# Kinds kustomize's namespace transformer leaves alone (the cluster-scoped ones we might meet).
CLUSTER_SCOPED_KINDS = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "ClusterTriggerAuthentication",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
}
# Built-in kinds whose pod template receives `labels` with includeTemplates.
TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Built-in kinds whose lists of named items merge by name in a strategic merge patch; lists in
# custom resources (unknown to kustomize) are replaced, as kustomize does.
STRATEGIC_MERGE_KINDS = TEMPLATE_KINDS | {"Pod", "ServiceAccount", "ConfigMap", "Secret",
                                          "Service", "PodDisruptionBudget"}


class UnsupportedKustomization(Exception):
    """The kustomization uses a feature ``render_minimal`` does not implement."""


def kubectl_available() -> bool:
    return shutil.which("kubectl") is not None


def render(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize DIRECTORY`` builds, or the fallback's where kubectl is
    missing."""
    if kubectl_available():
        return render_kubectl(directory)
    return render_minimal(directory)


def render_kubectl(directory: Path) -> list[Obj]:
    proc = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def render_minimal(directory: Path) -> list[Obj]:
    """Build DIRECTORY's kustomization: resources (files and directories), namespace, labels
    (includeSelectors: false), images, and patches given as strategic-merge patch files."""
    kustomization = _load_kustomization(directory)
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: {sorted(unsupported)}")
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render_minimal(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for patch_entry in kustomization.get("patches", []):
        _apply_patch(objects, directory, patch_entry)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for label_set in kustomization.get("labels", []):
        _apply_labels(objects, label_set)
    for image in kustomization.get("images", []):
        _apply_image(objects, image)
    return objects


def _load_kustomization(directory: Path) -> Obj:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            loaded: Obj = yaml.safe_load(path.read_text())
            return loaded
    raise FileNotFoundError(f"no kustomization in {directory}")


def _apply_patch(objects: list[Obj], directory: Path, entry: Obj) -> None:
    if set(entry) != {"path"}:
        raise UnsupportedKustomization(f"patch {entry}: only `path:` patches are supported")
    patch: Obj = yaml.safe_load((directory / entry["path"]).read_text())
    meta = patch["metadata"]
    matches = [obj for obj in objects
               if obj["kind"] == patch["kind"] and obj["apiVersion"] == patch["apiVersion"]
               and obj["metadata"]["name"] == meta["name"]
               and meta.get("namespace") in (None, obj["metadata"].get("namespace"))]
    if len(matches) != 1:
        raise ValueError(f"patch {entry['path']} matches {len(matches)} objects, not 1")
    merged = strategic_merge(matches[0], patch, named_lists=patch["kind"] in
                             STRATEGIC_MERGE_KINDS)
    matches[0].clear()
    matches[0].update(merged)


def strategic_merge(target: Any, patch: Any, *, named_lists: bool) -> Any:
    """Maps merge key by key (``null`` deletes); lists of named items merge by ``name`` on
    built-in kinds; any other value is replaced."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, named_lists=named_lists)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if (named_lists and isinstance(target, list) and isinstance(patch, list)
            and all(isinstance(item, dict) and "name" in item for item in target + patch)):
        result = copy.deepcopy(target)
        index = {item["name"]: i for i, item in enumerate(result)}
        for item in patch:
            if item["name"] in index:
                result[index[item["name"]]] = strategic_merge(
                    result[index[item["name"]]], item, named_lists=named_lists)
            else:
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(patch)


def _apply_labels(objects: list[Obj], label_set: Obj) -> None:
    if label_set.get("includeSelectors", False):
        raise UnsupportedKustomization("labels with includeSelectors: true")
    pairs: dict[str, str] = label_set["pairs"]
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if label_set.get("includeTemplates", False) and obj["kind"] in TEMPLATE_KINDS:
            template_meta = obj["spec"]["template"].setdefault("metadata", {})
            template_meta.setdefault("labels", {}).update(pairs)


def _apply_image(objects: list[Obj], image: Obj) -> None:
    """``newName``, and ``digest`` (``name@digest``, which wins over a tag) or ``newTag``."""
    for obj in objects:
        if obj["kind"] not in TEMPLATE_KINDS:
            continue
        pod_spec = obj["spec"]["template"]["spec"]
        for container in pod_spec.get("initContainers", []) + pod_spec["containers"]:
            name, tag = _split_image(container["image"])
            if name != image["name"]:
                continue
            new_tag = str(image.get("newTag", tag))
            new_name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new_name}@{image['digest']}"
            else:
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _split_image(reference: str) -> tuple[str, str]:
    """``registry:5000/app:1.0`` -> (``registry:5000/app``, ``1.0``)."""
    slash, colon = reference.rfind("/"), reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, ""
