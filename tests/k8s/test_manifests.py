"""The Kubernetes manifests in k8s/, rendered with kustomize and checked offline.

Core kinds are validated by ``kubernetes-validate`` in strict mode (unknown fields fail) against
pinned Kubernetes versions; the custom resources (KEDA, Prometheus Operator) against the JSON
Schemas kept in k8s/schemas.  On top of schema validity, the tests hold the manifests to what
the code and the design need: locked-down pods, a grace period above the job budgets, every
setting the code reads provided, the autoscaler watching the queues the fleet really uses, and
one metrics port name from container to PodMonitor.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from typing import Any, cast
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import redis
import yaml

from shared.fleet.messages import export_message, scan_message
from shared.fleet.publisher import Publisher
from shared.settings import Settings
from tests.conftest import REPO
from tests.k8s.kustomize_render import (
    Obj,
    kubectl_available,
    render,
    render_kubectl,
    render_minimal,
)
from workers.runtime import Runtime

K8S = REPO / "k8s"
VARIANTS = {"base": K8S / "base", "example": K8S / "overlays" / "example"}
# The oldest and a recent Kubernetes the manifests must be valid for.
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
SCHEMA_FILES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/v1alpha1/ScaledObject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh/v1alpha1/TriggerAuthentication.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com/v1/PodMonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/v1/PrometheusRule.json",
}
EXAMPLE_NAMESPACE = "bucketbridge"
METRICS_PORT_NAME = "metrics"
# Time a job may still need after its budget to commit and return, and the kubelet's margin.
SHUTDOWN_MARGIN_S = 60


# ---- helpers ----------------------------------------------------------------------------------

def key(obj: Obj) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployments(objs: list[Obj]) -> list[Obj]:
    found = [o for o in objs if o["kind"] == "Deployment"]
    assert found, "no Deployment rendered"
    return found


def containers(deployment: Obj) -> list[Obj]:
    spec = deployment["spec"]["template"]["spec"]
    return cast(list[Obj], spec.get("initContainers", []) + spec["containers"])


def config_data(objs: list[Obj]) -> dict[str, str]:
    return cast(dict[str, str], one(objs, "ConfigMap", "bucketbridge-config")["data"])


def budget_s(objs: list[Obj]) -> int:
    settings = Settings.from_env(config_data(objs))
    return max(settings.import_budget_s, settings.export_budget_s)


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {"In": present and value in expr.get("values", []),
              "NotIn": not present or value not in expr.get("values", []),
              "Exists": present, "DoesNotExist": not present}[expr["operator"]]
        if not ok:
            return False
    return True


def pod_labels(deployment: Obj) -> dict[str, str]:
    return cast(dict[str, str], deployment["spec"]["template"]["metadata"]["labels"])


def schema_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((K8S / "schemas" / SCHEMA_FILES[api_version, kind]).read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def dockerfile_uid() -> int:
    match = re.search(r"^ARG APP_UID=(\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "Dockerfile has no ARG APP_UID=<uid>"
    return int(match.group(1))


def shutdown_timeout_ms(args: list[str]) -> int:
    assert "--worker-shutdown-timeout" in args, "the worker must bound dramatiq's shutdown"
    return int(args[args.index("--worker-shutdown-timeout") + 1])


class RecordingEnv(dict[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.names.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self.names.add(str(name))
        return super().__contains__(name)


def settings_names_read() -> set[str]:
    env = RecordingEnv()
    Settings.from_env(env)
    names = {n for n in env.names if n.startswith("BUCKETBRIDGE_")}
    assert "BUCKETBRIDGE_REDIS_URL" in names, "the recording environment saw no reads"
    return names


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {variant: render(path) for variant, path in VARIANTS.items()}


@pytest.fixture(scope="module")
def example(rendered: dict[str, list[Obj]]) -> list[Obj]:
    return rendered["example"]


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, rendered: dict[str, list[Obj]]) -> list[Obj]:
    return rendered[cast(str, request.param)]


# ---- rendering --------------------------------------------------------------------------------

def test_base_and_example_render_the_whole_fleet(rendered: dict[str, list[Obj]]) -> None:
    # Given the base and the example overlay
    # When kustomize renders them
    base, example = rendered["base"], rendered["example"]
    # Then the base holds every part of the fleet and the overlay adds its Secret
    expected = {
        ("ServiceAccount", "bucketbridge"), ("ConfigMap", "bucketbridge-config"),
        ("Deployment", "bucketbridge-worker"), ("Deployment", "bucketbridge-scheduler"),
        ("Deployment", "bucketbridge-listener"),
        ("PodDisruptionBudget", "bucketbridge-worker"),
        ("PodDisruptionBudget", "bucketbridge-scheduler"),
        ("PodDisruptionBudget", "bucketbridge-listener"),
        ("TriggerAuthentication", "bucketbridge-redis"), ("ScaledObject", "bucketbridge-worker"),
        ("PodMonitor", "bucketbridge"), ("PrometheusRule", "bucketbridge"),
        ("NetworkPolicy", "bucketbridge"),
    }
    base_names = {(o["kind"], o["metadata"]["name"]) for o in base}
    assert expected <= base_names
    example_names = {(o["kind"], o["metadata"]["name"]) for o in example}
    assert example_names == base_names | {("Secret", "bucketbridge-redis")}
    # And every object of the example lands in its namespace
    assert {o["metadata"].get("namespace") for o in example} == {EXAMPLE_NAMESPACE}


def test_base_lists_the_alert_rules_and_the_dashboard() -> None:
    # Given the base kustomization
    kustomization = yaml.safe_load((VARIANTS["base"] / "kustomization.yaml").read_text())
    # Then the alert rules and the Grafana dashboard are part of it, and exist
    for name in ("prometheusrule.yaml", "grafana-dashboard.yaml"):
        assert name in kustomization["resources"]
        assert (VARIANTS["base"] / name).is_file()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_fallback_renderer_agrees_with_kustomize(name: str) -> None:
    # Given kubectl's kustomize and the tests' fallback renderer
    if not kubectl_available():
        pytest.skip("kubectl is not installed: the fallback renderer is in use, with nothing "
                    "to compare it with")
    # When both render the same kustomization
    real = sorted(render_kubectl(VARIANTS[name]), key=key)
    fallback = sorted(render_minimal(VARIANTS[name]), key=key)
    # Then they build the same objects
    assert fallback == real


# ---- schemas ----------------------------------------------------------------------------------

@pytest.mark.parametrize("k8s_version", KUBERNETES_VERSIONS)
def test_core_objects_are_valid_in_strict_mode(variant: list[Obj], k8s_version: str) -> None:
    # Given every rendered object that is not a custom resource
    core = [o for o in variant if (o["apiVersion"], o["kind"]) not in SCHEMA_FILES]
    assert {"Deployment", "ConfigMap", "PodDisruptionBudget", "ServiceAccount"} <= {
        o["kind"] for o in core}
    # When kubernetes-validate checks it in strict mode (unknown fields are errors)
    # Then it is valid (an unknown kind raises SchemaNotFoundError and fails too)
    for obj in core:
        kubernetes_validate.validate(obj, k8s_version, strict=True)


def test_custom_resources_match_their_schemas(variant: list[Obj]) -> None:
    # Given every rendered custom resource
    custom = [o for o in variant if (o["apiVersion"], o["kind"]) in SCHEMA_FILES]
    assert {o["kind"] for o in custom} == {k for _, k in SCHEMA_FILES}
    # When it is validated against the schema kept in k8s/schemas
    # Then it is valid
    for obj in custom:
        schema_validator(obj["apiVersion"], obj["kind"]).validate(obj)


@pytest.mark.parametrize("api_version_kind", list(SCHEMA_FILES), ids=lambda k: k[1])
def test_schemas_are_well_formed(api_version_kind: tuple[str, str]) -> None:
    # Given a schema file
    path = K8S / "schemas" / SCHEMA_FILES[api_version_kind]
    schema = json.loads(path.read_text())
    # Then it is a valid JSON Schema of the draft it declares
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_strict_core_validation_rejects_a_misspelt_field(example: list[Obj]) -> None:
    # Given the worker Deployment with one field misspelt deep in its pod template
    worker = copy.deepcopy(one(example, "Deployment", "bucketbridge-worker"))
    security = worker["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    # When it is validated as the tests validate it
    # Then it is rejected
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(worker, KUBERNETES_VERSIONS[0], strict=True)


def _misspelt_spec_field(obj: Obj) -> None:
    obj["spec"]["unknownField"] = 1


def _scaledobject_trigger_typo(obj: Obj) -> None:
    trigger = obj["spec"]["triggers"][0]["metadata"]
    trigger["listname"] = trigger.pop("listName")


def _scaledobject_redis_url_address(obj: Obj) -> None:
    obj["spec"]["triggers"][0]["metadata"]["address"] = "redis://redis:6379/0"


def _scaledobject_window_too_long(obj: Obj) -> None:
    behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    behavior["scaleDown"]["stabilizationWindowSeconds"] = 7200


def _podmonitor_endpoint_typo(obj: Obj) -> None:
    obj["spec"]["podMetricsEndpoints"][0]["ports"] = "metrics"


def _triggerauth_ref_without_key(obj: Obj) -> None:
    del obj["spec"]["secretTargetRef"][0]["key"]


def _rule_both_alert_and_record(obj: Obj) -> None:
    obj["spec"]["groups"] = [{"name": "g", "rules": [{"alert": "A", "record": "r", "expr": "1"}]}]


@pytest.mark.parametrize("kind, break_it", [
    ("ScaledObject", _misspelt_spec_field),
    ("ScaledObject", _scaledobject_trigger_typo),
    ("ScaledObject", _scaledobject_redis_url_address),
    ("ScaledObject", _scaledobject_window_too_long),
    ("TriggerAuthentication", _misspelt_spec_field),
    ("TriggerAuthentication", _triggerauth_ref_without_key),
    ("PodMonitor", _misspelt_spec_field),
    ("PodMonitor", _podmonitor_endpoint_typo),
    ("PrometheusRule", _misspelt_spec_field),
    ("PrometheusRule", _rule_both_alert_and_record),
], ids=lambda v: getattr(v, "__name__", v))
def test_custom_resource_schemas_reject_mistakes(example: list[Obj], kind: str,
                                                 break_it: Any) -> None:
    # Given a valid custom resource with one mistake in it
    obj = copy.deepcopy(one(example, kind))
    break_it(obj)
    # When it is validated against its schema
    # Then it is rejected
    with pytest.raises(jsonschema.ValidationError):
        schema_validator(obj["apiVersion"], kind).validate(obj)


def test_prometheus_rule_group_names_are_unique(variant: list[Obj]) -> None:
    # Given the alert rules (the operator rejects duplicate group names; a schema cannot)
    rule = one(variant, "PrometheusRule")
    names = [group["name"] for group in rule["spec"].get("groups", [])]
    # Then no two groups share a name
    assert len(names) == len(set(names))


def test_json_documents_in_config_maps_parse(variant: list[Obj]) -> None:
    # Given every ConfigMap entry named *.json (the Grafana dashboard)
    documents = [value for o in variant if o["kind"] == "ConfigMap"
                 for name, value in o.get("data", {}).items() if name.endswith(".json")]
    assert documents
    # Then each is JSON
    for document in documents:
        json.loads(document)


# ---- pods -------------------------------------------------------------------------------------

def test_pods_run_locked_down(variant: list[Obj]) -> None:
    uid = dockerfile_uid()
    for deployment in deployments(variant):
        # Given a Deployment's pod template
        pod = deployment["spec"]["template"]["spec"]
        # Then the pod runs as the image's non-root user under the runtime's seccomp profile,
        # with no Kubernetes API token
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == one(variant, "ServiceAccount")["metadata"]["name"]
        # And its only volumes are scratch space
        assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])
        scratch = {v["name"] for v in pod["volumes"]}
        for container in containers(deployment):
            # And every container is unprivileged on a read-only root filesystem
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["runAsNonRoot"] is True
            assert security.get("runAsUser", uid) == uid
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security.get("privileged", False) is False
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            # And it may write only to /tmp, an emptyDir
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] in scratch
            assert set(mounts.values()) <= scratch
            assert all(not m.get("readOnly", False) for m in container["volumeMounts"])


def test_worker_metrics_files_live_on_an_emptydir(variant: list[Obj]) -> None:
    # Given the containers that set prometheus-client's multiprocess directory
    worker = one(variant, "Deployment", "bucketbridge-worker")
    for deployment in deployments(variant):
        scratch = {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
        for container in containers(deployment):
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "PROMETHEUS_MULTIPROC_DIR" not in env:
                # (the worker must set it: its processes' metrics are summed from there)
                assert deployment is not worker
                continue
            # Then the directory is a writable emptyDir mount of its own, emptied with the pod
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(env["PROMETHEUS_MULTIPROC_DIR"]) in scratch


def test_the_grace_period_covers_the_job_budgets(variant: list[Obj]) -> None:
    # Given the job budgets the pods are configured with
    budget = budget_s(variant)
    # And the worker's grace period and dramatiq's own shutdown timeout
    worker = one(variant, "Deployment", "bucketbridge-worker")
    grace_s = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    shutdown_ms = shutdown_timeout_ms(containers(worker)[0]["args"])
    # Then a job stopped at its budget returns before dramatiq stops waiting for it, and
    # dramatiq has stopped before the kubelet's SIGKILL
    assert budget * 1000 < shutdown_ms < grace_s * 1000
    assert grace_s >= budget + SHUTDOWN_MARGIN_S


def test_every_setting_the_code_reads_reaches_every_container(variant: list[Obj]) -> None:
    # Given the BUCKETBRIDGE_* variables Settings.from_env reads
    names = settings_names_read()
    data = config_data(variant)
    for deployment in deployments(variant):
        for container in containers(deployment):
            # When a container's environment is assembled from its ConfigMap and Secret refs
            provided = {e["name"] for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == "bucketbridge-config"
                provided |= set(data)
            # Then it gets every one of them
            assert names <= provided, f"{container['name']} lacks {sorted(names - provided)}"
    # And the Redis URL, which holds a password, comes from a Secret, not the ConfigMap
    assert "BUCKETBRIDGE_REDIS_URL" not in data
    for deployment in deployments(variant):
        for container in containers(deployment):
            env = {e["name"]: e for e in container["env"]}
            assert "secretKeyRef" in env["BUCKETBRIDGE_REDIS_URL"]["valueFrom"]
    # And the ConfigMap sets no BUCKETBRIDGE_* name the code ignores (a misspelt one)
    assert {n for n in data if n.startswith("BUCKETBRIDGE_")} <= names


def test_base_config_states_the_documented_defaults(rendered: dict[str, list[Obj]]) -> None:
    # Given the base ConfigMap, read as the code reads it
    configured = Settings.from_env(config_data(rendered["base"]))
    # Then every number it sets is the code's default (README: 300, 300, 3600, 7200, 183, 9191)
    defaults = Settings()
    for field in ("import_budget_s", "export_budget_s", "scan_interval_s", "export_interval_s",
                  "export_lookback_days", "metrics_port"):
        assert getattr(configured, field) == getattr(defaults, field), field


def test_roles_and_replicas(variant: list[Obj]) -> None:
    # Given the two Deployments of the one image
    worker = one(variant, "Deployment", "bucketbridge-worker")
    scheduler = one(variant, "Deployment", "bucketbridge-scheduler")
    worker_args = containers(worker)[0]["args"]
    # Then the scheduler runs twice (publishing is once per slot, so that is safe)
    assert containers(scheduler)[0]["args"] == ["scheduler"]
    assert scheduler["spec"]["replicas"] == 2
    # And the worker runs dramatiq's processes and threads; its replicas belong to the
    # autoscaler, so the Deployment does not set them
    assert worker_args[0] == "worker"
    assert {"--processes", "--threads"} <= set(worker_args)
    assert "replicas" not in worker["spec"]
    # And the listener runs twice (replicas share the queue and one pending scan per site)
    listener = one(variant, "Deployment", "bucketbridge-listener")
    assert containers(listener)[0]["args"] == ["listen"]
    assert listener["spec"]["replicas"] == 2
    # And all run the same image
    assert len({c["image"] for d in (worker, scheduler, listener)
                for c in containers(d)}) == 1


def test_the_example_names_the_queue_the_listener_reads(example: list[Obj]) -> None:
    settings = Settings.from_env(config_data(example))
    assert settings.notify_queue_url is not None
    assert settings.notify_queue_url.startswith("https://sqs.")
    # (SQS is HTTPS, which the network policy lets out)
    egress = one(example, "NetworkPolicy")["spec"]["egress"]
    assert (443, "TCP") in {(p["port"], p["protocol"]) for r in egress for p in r["ports"]}


def test_disruption_budgets_cover_both_roles(variant: list[Obj]) -> None:
    budgets = [o for o in variant if o["kind"] == "PodDisruptionBudget"]
    for deployment in deployments(variant):
        # Given a Deployment
        # Then exactly one PodDisruptionBudget selects its pods
        mine = [b for b in budgets if selector_matches(b["spec"]["selector"],
                                                       pod_labels(deployment))]
        assert len(mine) == 1, deployment["metadata"]["name"]
        spec = mine[0]["spec"]
        if deployment["metadata"]["name"] == "bucketbridge-worker":
            # And a drain may always take a worker, even the last one (it gets its grace
            # period), but never two at once
            assert spec == {"maxUnavailable": 1, "selector": spec["selector"]}
        else:
            # And a scheduler is always left running
            assert spec["minAvailable"] == 1 < deployment["spec"]["replicas"]


# ---- metrics ----------------------------------------------------------------------------------

def test_one_metrics_port_from_settings_to_pod_monitor(variant: list[Obj]) -> None:
    # Given the metrics port the code listens on
    port = Settings.from_env(config_data(variant)).metrics_port
    monitor = one(variant, "PodMonitor")
    for deployment in deployments(variant):
        for container in containers(deployment):
            # Then each container declares it under the name the PodMonitor scrapes
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports[METRICS_PORT_NAME] == port
            # And its probes use it
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"] == {"path": "/metrics",
                                                       "port": METRICS_PORT_NAME}
        # And the PodMonitor selects its pods
        assert selector_matches(monitor["spec"]["selector"], pod_labels(deployment))
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == [METRICS_PORT_NAME]
    assert endpoints[0]["path"] == "/metrics"


# ---- network ----------------------------------------------------------------------------------

MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
# What the fleet reaches: DNS, Redis (the example Secret's port), S3 and STS over HTTPS.
ALLOWED_EGRESS = {(53, "UDP"), (53, "TCP"), (6379, "TCP"), (443, "TCP")}


def test_the_network_policy_covers_every_pod_of_the_fleet_both_ways(variant: list[Obj]) -> None:
    policy = one(variant, "NetworkPolicy")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    for deployment in deployments(variant):
        assert selector_matches(policy["podSelector"], pod_labels(deployment))


def test_metrics_are_reachable_only_from_the_monitoring_namespace(variant: list[Obj]) -> None:
    # Given the policy's ingress rules
    ingress = one(variant, "NetworkPolicy")["spec"]["ingress"]
    # Then one rule lets in the monitoring namespace's pods, on the metrics port alone
    assert len(ingress) == 1
    assert ingress[0]["from"] == [{"namespaceSelector": {"matchLabels": MONITORING_NAMESPACE}}]
    assert ingress[0]["ports"] == [{"port": METRICS_PORT_NAME, "protocol": "TCP"}]
    # (the port the containers name "metrics", which the PodMonitor scrapes)
    for deployment in deployments(variant):
        for container in containers(deployment):
            assert METRICS_PORT_NAME in {p["name"] for p in container["ports"]}
    assert [e["port"] for e in one(variant, "PodMonitor")["spec"]["podMetricsEndpoints"]] == \
        [METRICS_PORT_NAME]


def test_egress_is_dns_redis_and_https_only(variant: list[Obj]) -> None:
    # Given the policy's egress rules
    egress = one(variant, "NetworkPolicy")["spec"]["egress"]
    # Then every rule names its ports (a rule without ports would open every port)
    assert all(rule.get("ports") for rule in egress)
    allowed = {(p["port"], p["protocol"]) for rule in egress for p in rule["ports"]}
    assert allowed == ALLOWED_EGRESS


def test_the_example_redis_is_reachable_through_the_policy(example: list[Obj]) -> None:
    # Given the Redis URL the example's pods get, and the policy's egress ports
    secret = one(example, "Secret", "bucketbridge-redis")
    port = urlsplit(secret["stringData"]["url"]).port
    egress = one(example, "NetworkPolicy")["spec"]["egress"]
    # Then its port is open (a Redis on another port needs the policy patched as well)
    assert (port, "TCP") in {(p["port"], p["protocol"]) for r in egress for p in r["ports"]}


def test_strict_validation_rejects_a_broken_network_policy(example: list[Obj]) -> None:
    policy = copy.deepcopy(one(example, "NetworkPolicy"))
    policy["spec"]["ingress"][0]["from"][0]["namespaceSelectors"] = \
        policy["spec"]["ingress"][0]["from"][0].pop("namespaceSelector")
    with pytest.raises(kubernetes_validate.ValidationError, match="namespaceSelectors"):
        kubernetes_validate.validate(policy, KUBERNETES_VERSIONS[0], strict=True)


# ---- autoscaling ------------------------------------------------------------------------------

def test_scaledobject_scales_the_worker_deployment(variant: list[Obj]) -> None:
    # Given the ScaledObject
    scaled = one(variant, "ScaledObject")["spec"]
    worker = one(variant, "Deployment", "bucketbridge-worker")
    # Then it scales the worker Deployment
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": worker["metadata"]["name"]}
    # And every trigger authenticates with the TriggerAuthentication rendered beside it
    auth = one(variant, "TriggerAuthentication")["metadata"]["name"]
    assert {t["authenticationRef"]["name"] for t in scaled["triggers"]} == {auth}


def test_scaling_in_never_cuts_work_short(variant: list[Obj]) -> None:
    # Given the ScaledObject and the job budget
    scaled = one(variant, "ScaledObject")["spec"]
    budget = budget_s(variant)
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    scale_down = behavior["scaleDown"]
    # Then there is always a worker (never scaled to zero)
    assert scaled["minReplicaCount"] >= 1
    assert scaled["maxReplicaCount"] >= scaled["minReplicaCount"]
    # And an empty queue must last longer than a job's budget before a pod is removed: the
    # list length does not count messages being worked on
    assert scale_down["stabilizationWindowSeconds"] >= budget
    # And pods go one at a time, at most one per budget's worth of time
    policies = scale_down["policies"]
    assert all(p["type"] == "Pods" and p["value"] == 1 and p["periodSeconds"] >= budget
               for p in policies)
    assert len(policies) == 1 or scale_down["selectPolicy"] == "Min"
    # And were the minimum ever set to 0, the last step would wait as long too
    assert scaled["cooldownPeriod"] >= budget


def test_the_hpa_keda_derives_is_valid(variant: list[Obj]) -> None:
    # Given the behavior KEDA copies into the HorizontalPodAutoscaler it creates
    scaled = one(variant, "ScaledObject")["spec"]
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-bucketbridge-worker"},
        "spec": {
            "scaleTargetRef": scaled["scaleTargetRef"],
            "minReplicas": scaled["minReplicaCount"],
            "maxReplicas": scaled["maxReplicaCount"],
            "behavior": scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        },
    }
    # Then Kubernetes' own schema accepts it
    for k8s_version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(hpa, k8s_version, strict=True)


@pytest.fixture
def published(redis_client: redis.Redis) -> redis.Redis:
    """One scan and one export message, published the way the scheduler and `enqueue` do."""
    broker = Publisher.for_redis(redis_client)
    broker.publish(scan_message("acme"))
    broker.publish(export_message("acme"))
    return redis_client


def test_triggers_watch_the_lists_the_fleet_publishes_to(variant: list[Obj],
                                                         published: redis.Redis) -> None:
    # Given one scan and one export message published to Redis by the producers' broker
    triggers = one(variant, "ScaledObject")["spec"]["triggers"]
    # When KEDA's Redis scaler would read the lengths of the lists its triggers name
    lengths = {t["metadata"]["listName"]: published.llen(t["metadata"]["listName"])
               for t in triggers if t["type"] == "redis"}
    # Then each list holds exactly one of them: the triggers watch the real queues, both
    assert lengths == {"dramatiq:imports": 1, "dramatiq:exports": 1}
    # And the workers consume from the same namespace
    namespace = inspect.signature(Runtime.build).parameters["namespace"].default
    assert {name.split(":")[0] for name in lengths} == {namespace}


def test_keda_reaches_the_redis_the_workers_use(example: list[Obj]) -> None:
    # Given the example's Redis Secret and what KEDA reads from it
    secret = one(example, "Secret", "bucketbridge-redis")
    values = {**secret.get("stringData", {})}
    auth = one(example, "TriggerAuthentication")["spec"]["secretTargetRef"]
    params = {ref["parameter"]: values[ref["key"]] for ref in auth
              if ref["name"] == secret["metadata"]["name"]}
    url = urlsplit(values["url"])
    # Then KEDA's address, password and database are those of the workers' URL
    assert params["address"] == f"{url.hostname}:{url.port}"
    assert params["password"] == (url.password or "")
    for trigger in one(example, "ScaledObject")["spec"]["triggers"]:
        assert trigger["metadata"]["databaseIndex"] == (url.path.lstrip("/") or "0")


# ---- the example overlay ----------------------------------------------------------------------

def test_example_references_resolve(example: list[Obj]) -> None:
    # Given every Secret, ConfigMap and ServiceAccount the example's objects point at
    secrets = {o["metadata"]["name"]: {**o.get("data", {}), **o.get("stringData", {})}
               for o in example if o["kind"] == "Secret"}
    config_maps = {o["metadata"]["name"] for o in example if o["kind"] == "ConfigMap"}
    accounts = {o["metadata"]["name"] for o in example if o["kind"] == "ServiceAccount"}
    refs = 0
    for deployment in deployments(example):
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] in accounts
        for container in containers(deployment):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
                refs += 1
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    # Then each names an existing Secret and key
                    assert ref["key"] in secrets[ref["name"]]
                    refs += 1
    for ref in one(example, "TriggerAuthentication")["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]]
        refs += 1
    assert refs >= 6


def test_example_pins_the_image_and_binds_an_iam_role(example: list[Obj]) -> None:
    # Given the example's pods and ServiceAccount
    images = {c["image"] for d in deployments(example) for c in containers(d)}
    account = one(example, "ServiceAccount")
    # Then they run one image from a registry, by its digest (a tag can be moved, a digest
    # names the bytes)
    assert len(images) == 1
    image = images.pop()
    assert re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9./-]+@sha256:[0-9a-f]{64}", image), image
    # And the ServiceAccount carries the IAM role the pods use for S3
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role)


def test_dockerfile_runs_every_role_through_the_entrypoint() -> None:
    # Given the Dockerfile
    text = (REPO / "Dockerfile").read_text()
    # Then the base image is a build argument, the entrypoint is `bucketbridge` in exec form
    # (dramatiq's parent gets SIGTERM itself) and the final stage runs as the fixed UID
    assert re.search(r"^ARG BASE_IMAGE=\S+$", text, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["bucketbridge"\]$', text, re.MULTILINE)
    final_stage = text[text.rindex("\nFROM "):]
    assert re.search(r"^USER \$\{APP_UID\}", final_stage, re.MULTILINE)
    assert dockerfile_uid() >= 10000
