"""serving-pods-restricted judges every kind that declares pods: the capture sink Deployment of the prod plan, the
same pod declared as a StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod, every container and component of an
InferenceService, and the ServingRuntime its predictor pods inherit from. Each case edits the recorded prod plan so
that the weakness sits where the rule once did not look."""

import copy

import pytest
from pulumi_policy import EnforcementLevel

from tests.policies.conftest import as_dev, refused, resources

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"


RESTRICTED = "serving-pods-restricted"


def sink(plan):
    (deployment,) = resources(plan, DEPLOYMENT)
    return deployment


def sink_pod(plan):
    return sink(plan)["inputs"]["spec"]["template"]["spec"]


def test_the_capture_sink_deployment_is_judged_and_meets_the_rule_as_declared(plan):
    """The prod plan's only Deployment: Pod Security restricted as declared (nothing tolerated)."""
    assert sink(plan)["name"] == "mlserve-prod-reranker-capture-sink"
    assert refused(plan, RESTRICTED) == []


@pytest.mark.parametrize("weaken,fragment", [
    (lambda pod: pod["securityContext"].pop("runAsNonRoot"), "may run as root"),
    (lambda pod: pod["securityContext"].update(runAsNonRoot=False), "may run as root"),
    (lambda pod: pod["securityContext"].pop("seccompProfile"), "no RuntimeDefault seccomp profile"),
    (lambda pod: pod["securityContext"].update(runAsUser=0), "runs as uid 0"),
    (lambda pod: pod["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation is not false"),
    (lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
     "capabilities are not all dropped"),
    (lambda pod: pod["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
     "the root filesystem is writable"),
    (lambda pod: pod["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (lambda pod: pod["containers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "no RuntimeDefault seccomp profile"),
    (lambda pod: pod["containers"][0]["securityContext"].update(runAsNonRoot=False), "may run as root"),
    (lambda pod: pod.update(automountServiceAccountToken=True), "mounts a Kubernetes API token"),
    (lambda pod: pod.pop("automountServiceAccountToken"), "mounts a Kubernetes API token"),
    (lambda pod: pod["containers"][0].pop("livenessProbe"), "no livenessProbe"),
    (lambda pod: pod.update(hostNetwork=True), "shares the node's namespace (hostNetwork)"),
    (lambda pod: pod.update(volumes=[{"name": "node", "hostPath": {"path": "/"}}]), "hostPath"),
    (lambda pod: pod.update(initContainers=[{"name": "init", "image": "x", "securityContext": {}}]),
     "init container init: allowPrivilegeEscalation is not false"),
])
def test_a_weakened_capture_sink_deployment_is_refused(plan, weaken, fragment):
    weaken(sink_pod(plan))
    found = refused(plan, RESTRICTED)
    assert found and all(urn == "mlserve-prod-reranker-capture-sink" for urn, _, _ in found), found
    assert any(fragment in message for _, message, _ in found), found
    assert all(level == EnforcementLevel.MANDATORY for _, _, level in found)
    assert refused(as_dev(plan), RESTRICTED, stack="dev"), "security rules stay mandatory in dev too"


def as_kind(plan, type_token):
    """The capture sink's pod, declared again as another workload kind."""
    workload = copy.deepcopy(sink(plan))
    kind = type_token.rsplit(":", 1)[1]
    workload["type"] = type_token
    workload["name"] = f"sink-as-{kind.lower()}"
    workload["urn"] = workload["urn"].replace(f"${DEPLOYMENT}::mlserve-prod-reranker-capture-sink",
                                              f"${type_token}::{workload['name']}")
    inputs = workload["inputs"]
    inputs["kind"] = kind
    template = inputs["spec"]["template"]
    if kind == "CronJob":
        inputs["apiVersion"] = "batch/v1"
        inputs["spec"] = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        inputs["apiVersion"] = "batch/v1"
        inputs["spec"] = {"template": template}
    elif kind == "Pod":
        inputs["apiVersion"] = "v1"
        inputs["spec"] = template["spec"]
    else:
        inputs["spec"] = {"selector": inputs["spec"]["selector"], "template": template}
    plan["resources"].append(workload)
    pod = inputs["spec"] if kind == "Pod" else (
        inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else template["spec"])
    return workload, pod


KINDS = ["kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:ReplicaSet",
         "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:Pod"]


@pytest.mark.parametrize("type_token", KINDS)
def test_every_workload_kind_is_judged(plan, type_token):
    workload, pod = as_kind(plan, type_token)
    assert refused(plan, RESTRICTED) == [], "the sink's pod as another kind meets the rule too"
    pod["securityContext"]["runAsNonRoot"] = False
    pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    found = refused(plan, RESTRICTED)
    assert {urn for urn, _, _ in found} == {workload["name"]}, found
    assert {"may run as root", "the root filesystem is writable"} <= {
        fragment for _, message, _ in found for fragment in ("may run as root", "the root filesystem is writable")
        if fragment in message}


@pytest.mark.parametrize("type_token", ["kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"])
def test_a_job_needs_no_liveness_probe(plan, type_token):
    _, pod = as_kind(plan, type_token)
    pod["containers"][0].pop("livenessProbe")
    assert refused(plan, RESTRICTED) == []


def test_restricted_is_met_container_by_container_as_pod_security_admission_allows(plan):
    """Pod Security `restricted` accepts runAsNonRoot and seccomp on every container instead of the pod."""
    pod = sink_pod(plan)
    context = pod.pop("securityContext")
    for container in pod["containers"]:
        container["securityContext"].update(runAsNonRoot=True, seccompProfile=context["seccompProfile"])
    assert refused(plan, RESTRICTED) == []


def runtime(plan):
    (serving_runtime,) = resources(plan, SERVING_RUNTIME)
    return serving_runtime["inputs"]["spec"]


@pytest.mark.parametrize("weaken,fragment", [
    (lambda spec: spec["containers"][0]["securityContext"].pop("runAsNonRoot"), "may run as root"),
    (lambda spec: spec["containers"][0]["securityContext"].pop("seccompProfile"), "no RuntimeDefault seccomp"),
    (lambda spec: spec["containers"][0]["securityContext"].update(runAsUser=0), "runs as uid 0"),
    (lambda spec: spec.update(hostIPC=True), "shares the node's namespace (hostIPC)"),
    (lambda spec: spec.update(volumes=[{"name": "node", "hostPath": {"path": "/dev"}}]), "hostPath"),
    (lambda spec: spec.update(workerSpec={"containers": [{"name": "worker", "securityContext": {}}]}),
     "worker container worker: allowPrivilegeEscalation is not false"),
])
def test_the_serving_runtime_is_judged_for_what_its_pods_inherit(plan, weaken, fragment):
    """A ServingRuntime has no pod securityContext: its containers must carry non-root and seccomp themselves."""
    weaken(runtime(plan))
    found = refused(plan, RESTRICTED)
    assert found and all(urn == "mlserve-prod-reranker-runtime" for urn, _, _ in found), found
    assert any(fragment in message for _, message, _ in found), found


def predictor(plan, track="stable"):
    return next(r for r in resources(plan, INFERENCE_SERVICE) if r["name"].endswith(track))["inputs"]["spec"][
        "predictor"]


WEAK_CONTAINER = {"name": "sidecar", "image": "x", "securityContext": {"readOnlyRootFilesystem": False}}


@pytest.mark.parametrize("weaken,fragment", [
    (lambda p: p["model"]["securityContext"].update(runAsNonRoot=False), "may run as root"),
    (lambda p: p["model"]["securityContext"].update(seccompProfile={"type": "Unconfined"}), "seccomp"),
    (lambda p: p.update(containers=[copy.deepcopy(WEAK_CONTAINER)]), "container sidecar: the root filesystem"),
    (lambda p: p.update(initContainers=[copy.deepcopy(WEAK_CONTAINER)]), "init container sidecar"),
    (lambda p: p.update(hostPID=True), "hostPID"),
])
def test_every_container_of_an_inference_service_is_judged(plan, weaken, fragment):
    weaken(predictor(plan))
    found = refused(plan, RESTRICTED)
    assert found and all(urn == "mlserve-prod-reranker-stable" for urn, _, _ in found), found
    assert any(fragment in message for _, message, _ in found), found


def test_a_transformer_or_explainer_pod_is_judged_like_the_predictor(plan):
    spec = next(r for r in resources(plan, INFERENCE_SERVICE) if r["name"].endswith("stable"))["inputs"]["spec"]
    spec["transformer"] = {"containers": [copy.deepcopy(WEAK_CONTAINER)]}
    found = [message for _, message, _ in refused(plan, RESTRICTED)]
    assert any("transformer" in m and "may run as root" in m for m in found), found
    assert any("transformer" in m and "the root filesystem is writable" in m for m in found), found
