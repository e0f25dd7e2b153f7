"""The offline plan holds exactly what the engine would send: keys the SDKs know, objects their schemas accept.

Independent of the program's own picture: AWS inputs are checked against the installed pulumi_aws SDK's generated
input types (top-level and nested), Kubernetes objects as written in the plan JSON against kubernetes-validate
(strict) or their CRD's openAPIV3Schema.
"""

from __future__ import annotations

import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from infra.plan import run
from infra.plan.sdk_schema import args_type, autoname_property, resource_unknown_keys
from tests.harness import edited, plan_config, raw_config, stack_plan
from tests.kubernetes.schemas import CRD_FILES, builtin_errors, custom_resource_errors, unwrap_secrets


def plan_json(stack: str) -> list[dict]:
    return stack_plan(stack).as_json()["resources"]


def kubernetes_version(stack: str) -> str:
    return str((raw_config(stack).get("mlserve:cluster") or {}).get("kubernetes_version", "1.33"))


def test_every_resource_input_key_is_a_property_of_its_sdk_type(stack):
    checked, problems = 0, {}
    for resource in plan_json(stack):
        if not resource["custom"] or (resource["type"].startswith("kubernetes:") and args_type(resource["type"]) is None):
            continue  # custom resources (CRD kinds) are checked against their CRD below
        unknown = resource_unknown_keys(resource["type"], resource["inputs"])
        checked += 1
        if unknown:
            problems[resource["urn"]] = unknown
    assert problems == {}
    assert checked > 50


def test_every_kubernetes_object_validates_as_written_in_the_plan():
    objects = [r for r in plan_json("prod") if r["type"].startswith("kubernetes:") and r["custom"]
               and r["type"] != "kubernetes:helm.sh/v3:Release"]
    custom = {f"kubernetes:{g}/" for g, _ in CRD_FILES}
    assert len(objects) >= 10
    errors = {}
    for obj in objects:
        group = obj["type"].split(":")[1].split("/")[0]
        sent = unwrap_secrets(obj["inputs"])  # the API server gets a secret's value, not Pulumi's envelope
        found = custom_resource_errors(sent) if any(obj["type"].startswith(c) for c in custom) \
            else builtin_errors(sent, kubernetes_version("prod"))
        if found:
            errors[obj["urn"]] = (group, found)
    assert errors == {}


def test_the_sdk_check_catches_a_misspelt_nested_key():
    config = next(r for r in plan_json("prod") if r["type"] == "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    inputs = {**config["inputs"], "productionVariants": [
        {**config["inputs"]["productionVariants"][0], "instanceTyp": "ml.g5.xlarge"}]}
    assert resource_unknown_keys(config["type"], inputs) == ["productionVariants[0].instanceTyp"]
    assert resource_unknown_keys("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16", "name": "x"}) == ["name"]


def test_auto_naming_follows_each_provider():
    """Left unset, a role gets `name`, a bucket `bucket`, a ConfigMap `metadata.name`; a VPC gets nothing."""
    def program():
        aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        aws.s3.Bucket("logs")
        aws.s3.Bucket("prefixed", bucket_prefix="mlserve-")
        aws.iam.Role("role", assume_role_policy="{}")
        aws.iam.Role("named", name="given", assume_role_policy="{}")
        k8s.core.v1.ConfigMap("settings", data={"a": "b"})
        k8s.core.v1.ConfigMap("fixed", metadata={"name": "fixed-name"})
        return {}

    plan = run(program, stack="dev", region="us-east-1")
    by_name = {r.name: r.inputs for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")}
    assert set(by_name["vpc"]) == {"cidrBlock"}
    assert by_name["logs"]["bucket"].startswith("logs-") and "name" not in by_name["logs"]
    assert "bucket" not in by_name["prefixed"]
    assert by_name["role"]["name"].startswith("role-") and by_name["named"]["name"] == "given"
    assert by_name["settings"]["metadata"]["name"].startswith("settings-") and "name" not in by_name["settings"]
    assert by_name["fixed"]["metadata"]["name"] == "fixed-name"


@pytest.mark.parametrize("token, expected", [
    ("aws:s3/bucket:Bucket", "bucket"), ("aws:eks/nodeGroup:NodeGroup", "nodeGroupName"),
    ("aws:sagemaker/model:Model", "name"), ("aws:ec2/vpc:Vpc", None), ("aws:ec2/flowLog:FlowLog", None),
    ("aws:apigateway/stage:Stage", None)])
def test_the_auto_named_property_comes_from_the_sdk(token, expected):
    assert autoname_property(token) == expected


def test_no_input_holds_an_output_formatted_as_text(stack):
    """An Output put into an f-string becomes Pulumi's warning text instead of a value (as a KServe integration
    URI once did when no ingress domain was set)."""
    import json

    text = json.dumps(stack_plan(stack).as_json())
    assert "Calling __str__ on an Output" not in text


def test_a_kserve_api_without_an_ingress_domain_targets_the_nlb():
    """Outside prod a cluster may serve plain HTTP inside the VPC: the integration URI is the NLB's address."""
    def no_domain(raw):
        raw["mlserve:cluster"].pop("ingress_domain")
        raw["mlserve:cluster"].pop("ingress_certificate_arn")
        raw["mlserve:environment"] = "dev"

    plan = plan_config(edited("prod", no_domain), "dev")
    uri = next(r for r in plan.of_type("aws:apigateway/integration:Integration") if r.inputs["type"] == "HTTP")
    assert uri.inputs["uri"].startswith("http://") and ".elb." in uri.inputs["uri"]
    assert uri.inputs["uri"].endswith("/v2/models/reranker/infer")
