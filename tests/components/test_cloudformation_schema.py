"""Every `aws-native:*` resource the plans declare, against CloudFormation's own resource schema (cfn-lint's copy).

pulumi-aws-native resources are CloudFormation resource types created through Cloud Control: the provider turns the
engine's camelCase inputs into the type's CloudFormation properties (`cloudformation_properties` below does the same)
and sends them as the desired state. So the authority on an aws-native resource's shape is the CloudFormation
resource schema, which cfn-lint 1.58 ships per region (`cfnlint/data/schemas/providers/<region>.json` maps a type
name to a file under `resources/`; `PROVIDER_SCHEMA_MANAGER` loads it). Each resource is linted as a one-resource
template, so CloudFormation-level rules (enums, patterns, lengths, ranges, required, additional properties, oneOf)
apply too, with strict types (E3012 `strict`): the provider sends typed JSON, which Cloud Control does not coerce the
way a template's strings are, so `"25"` for an integer is refused here as it would be there.

The SageMaker API model (botocore) checks the same component elsewhere (tests/components/test_inference_components.py);
neither bounds a CAPACITY_PERCENT batch (see the last test).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
import pytest
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from pulumi.output import Unknown

from infra.plan import Plan
from infra.plan.model import UNKNOWN_MARKER
from infra.plan.sdk_schema import SECRET_SIG, SIG_KEY, _input_types_in, args_type, input_properties
from tests.components.test_inference_components import to_components
from tests.components.test_shared_endpoint import share
from tests.harness import config_of, edited, plan_config, raw_config, stack_plan

COMPONENT = "aws-native:sagemaker:InferenceComponent"
BUNDLED_SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"

# Warnings cfn-lint may give on a plan's aws-native resource, each with the reason it is acceptable. None today.
ALLOWED_WARNINGS: dict[str, str] = {}


# ---- pulumi-aws-native's naming rule ---------------------------------------------------------------------------------
#
# The provider converts inputs with SdkToCfn (pulumi/pulumi-aws-native provider/pkg/naming/convert.go): each property
# of the resource and of each object type is renamed with ToCfnName (provider/pkg/naming/naming.go), which looks the
# SDK name up in the type's `irreversibleNames` table and otherwise upper-cases its first letter (ToPascalCase). The
# generator (provider/pkg/schema/gen.go, gatherResourceType) fills that table with every CloudFormation name P for
# which ToPascalCase(ToSdkName(P)) != P (an acronym: `VPCId` is the SDK's `vpcId`), and names a top-level `Id`
# `awsId`. So the table is rebuilt here from the schema itself: at each level, the CloudFormation property whose
# ToSdkName is the input's name. Map-typed values (additionalProperties / patternProperties, e.g. a container's
# Environment) and untyped ones (`pulumi.json#/Any`) keep their keys, as SdkToCfn does. Tags need no exception: a
# CloudFormation list of {Key, Value} is the SDK's list of {key, value} (same rule), a JSON-object Tags is a map.
# The SDK only offers inputs the schema has (a resource class's inputs are its `_internal_init` parameters, generated
# from the schema's properties), so there is nothing Pulumi-only to drop; an input that maps to no property is kept
# under its PascalCase name and cfn-lint refuses it (E3002) rather than this conversion hiding it.

def _is_upper(char: str) -> bool:
    return "A" <= char <= "Z" or "0" <= char <= "9"  # naming.go's isUpperAcronymChar


def _first_uppercase_run(name: str, min_length: int = 2) -> tuple[int, int]:
    """naming.go's findFirstRunOfUppercase (a run reaching the end is returned whatever its length, as there)."""
    start = -1
    for i, char in enumerate(name):
        if start == -1:
            if _is_upper(char):
                start = i
        elif not _is_upper(char):
            if i - start >= min_length:
                return start, i
            start = -1
    return (-1, -1) if start == -1 else (start, len(name))


def _lower_acronyms(name: str) -> str:
    """naming.go's LowerAcronyms: `IPAddress` -> `IpAddress`, `SomeARNs` -> `SomeArns`, `EC2ManagedKey` -> `Ec2ManagedKey`."""
    start, end = _first_uppercase_run(name)
    if start == -1:
        return name
    rest = name[end:]
    isolated_s = rest[:1] == "s" and (len(rest) == 1 or _is_upper(rest[1]))
    if end != len(name) and not isolated_s:
        end -= 1  # the run's last capital starts the next word
    return name[:start + 1] + name[start + 1:end].lower() + _lower_acronyms(name[end:])


def sdk_name(cloudformation_name: str) -> str:
    """naming.go's ToSdkName: the engine's camelCase name of a CloudFormation property."""
    name = _lower_acronyms(cloudformation_name)
    return name[:1].lower() + name[1:] if name[:1].isupper() else name


def _resolve(schema: dict[str, Any] | None, root: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema or {})
    while "$ref" in schema:
        ref = schema.pop("$ref")
        assert ref.startswith("#/definitions/"), ref
        schema = {**root["definitions"][ref.removeprefix("#/definitions/")], **schema}
    return schema


def _named_properties(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """The named properties an object schema declares (its oneOf/anyOf/allOf branches' too), or None for a map or an
    untyped object."""
    found = dict(schema.get("properties") or {})
    for combinator in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(combinator, []):
            found.update(_named_properties(_resolve(branch, root), root) or {})
    return found or None


def _map_values(schema: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(schema.get("additionalProperties"), dict):
        return schema["additionalProperties"]
    patterns = list((schema.get("patternProperties") or {}).values())
    return patterns[0] if len(patterns) == 1 else None


def cloudformation_properties(inputs: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A recorded aws-native resource's inputs as the CloudFormation properties the provider sends, and the stub
    template parameters that stand for the values not known at plan time.

    Names follow the rule above. Numbers: the engine carries every number as a double and the provider writes it
    with Go's encoding/json, which prints a whole double without a fraction (8192.0 is sent as 8192), so whole floats
    become ints here. Secrets are unwrapped (the provider sends the plaintext). An unknown value (another resource's
    output at preview) becomes a `Ref` to a stub parameter of the schema's type: cfn-lint checks its place and type,
    not a value nobody knows yet.
    """
    stubs: dict[str, str] = {}

    def stub(value_schema: dict[str, Any]) -> dict[str, str]:
        kind = str(value_schema.get("type"))
        name = f"Unknown{len(stubs) + 1}"
        stubs[name] = {"integer": "Number", "number": "Number", "array": "CommaDelimitedList"}.get(kind, "String")
        return {"Ref": name}

    def convert(value: Any, value_schema: dict[str, Any] | None, top: bool = False) -> Any:
        value_schema = _resolve(value_schema, schema)
        if isinstance(value, Unknown) or value == UNKNOWN_MARKER:
            return stub(value_schema)
        if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
            return convert(value.get("value"), value_schema, top)
        if isinstance(value, dict):
            named = _named_properties(value_schema, schema)
            if named is None:  # a map or untyped object: keys are data, not property names
                values = _map_values(value_schema)
                return {key: convert(item, values) for key, item in value.items()}
            by_sdk_name = {sdk_name(p): p for p in named} | ({"awsId": "Id"} if top and "Id" in named else {})
            converted = {}
            for key, item in value.items():
                name: str = by_sdk_name.get(key) or key[:1].upper() + key[1:]
                converted[name] = convert(item, named.get(name) or {})
            return converted
        if isinstance(value, (list, tuple)):
            return [convert(item, value_schema.get("items")) for item in value]
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return convert(inputs, schema, top=True), stubs


# ---- the oracle ------------------------------------------------------------------------------------------------------

@cache
def cloudformation_type(token: str, region: str) -> str:
    """`aws-native:sagemaker:InferenceComponent` -> `AWS::SageMaker::InferenceComponent`: the token is the type name
    with the module lower-cased (naming.go's TypeToken), so it is looked up among the region's types."""
    _, module, name = token.split(":")
    module = "config" if module == "configuration" else module  # the one module naming.go renames
    found = [t for t in PROVIDER_SCHEMA_MANAGER.get_resource_types(region)
             if t.startswith("AWS::") and t.count("::") == 2
             and [part.lower() for part in t.split("::")[1:]] == [module, name.lower()]]
    assert len(found) == 1, f"{token}: CloudFormation types {found} in {region}"
    return found[0]


def resource_schema(cfn_type: str, region: str) -> dict[str, Any]:
    return PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, cfn_type).schema


def _read_only_paths_set(properties: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Paths of read-only properties the template sets: CloudFormation ignores them, yet the SDK offers the nested
    ones (see `sdk_inputs_against_schema`)."""
    read_only = set(schema.get("readOnlyProperties", []))
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if path in read_only:
            found.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}/{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}/*")

    for key, value in properties.items():
        walk(value, f"/properties/{key}")
    return found


@cache
def linter(region: str) -> Runner:
    """cfn-lint's runner with its default rules (errors and warnings), loaded once (0.3 s a load), for `region`."""
    return Runner(ConfigMixIn(regions=[region], configure_rules={"E3012": {"strict": True}}))


def lint_resource(token: str, inputs: dict[str, Any], region: str) -> list[tuple[str, str, str, str]]:
    """(rule, severity, path, message) for each finding of cfn-lint on the resource as a one-resource template."""
    cfn_type = cloudformation_type(token, region)
    schema = resource_schema(cfn_type, region)
    properties, stubs = cloudformation_properties(inputs, schema)
    template = {"AWSTemplateFormatVersion": "2010-09-09",
                "Parameters": {name: {"Type": kind} for name, kind in stubs.items()},
                "Resources": {"Resource": {"Type": cfn_type, "Properties": properties}}}
    if not stubs:
        del template["Parameters"]
    decoded, errors = decode_str(json.dumps(template))
    assert decoded is not None and not errors, errors
    found = [(m.rule.id, m.rule.severity, "/".join(map(str, getattr(m, "path", None) or [])), m.message)
             for m in linter(region).validate_template(decoded)]
    # cfn-lint 1.58's read-only rule (E3040) is keyed on "*", which only its Ref/GetAtt rules honour
    # (rules/jsonschema/CfnLint.py matches keywords exactly): a read-only property set as a plain value passes it, so
    # the schema's readOnlyProperties are checked here.
    found += [("readOnlyProperties", "error", path, "read-only property set") for path in
              _read_only_paths_set(properties, schema)]
    return found


def refusals(found: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    return [f for f in found if f[1] == "error" or (f[1] == "warning" and f[0] not in ALLOWED_WARNINGS)]


# ---- the plans the tests build ---------------------------------------------------------------------------------------

PLANS = {
    # name: (base stack, edit or None for the checked-in stack, whether the plan must hold an inference component)
    "dev": ("dev", None, True),
    "prod": ("prod", None, False),
    "prod-components": ("prod", to_components, True),  # tests/components/test_inference_components.py
    "dev-shared-endpoint": ("dev", share, True),  # tests/components/test_shared_endpoint.py
}


@cache
def built(name: str) -> Plan:
    stack, edit, _ = PLANS[name]
    return stack_plan(stack) if edit is None else plan_config(edited(stack, edit), stack)


@cache
def region_of(stack: str) -> str:
    return config_of(raw_config(stack), stack).region


def aws_native(plan: Plan):
    return [r for r in plan.resources if r.custom and r.type.startswith("aws-native:")]


def test_the_schemas_are_the_copy_cfn_lint_ships():
    # cfn-lint prefers a newer schema download under ~/.cache/aws/cfn-lint; the oracle must not change under a test.
    assert Path(PROVIDER_SCHEMA_MANAGER._providers_dir).resolve() == (BUNDLED_SCHEMAS / "providers").resolve()
    assert cloudformation_type(COMPONENT, "us-east-1") == "AWS::SageMaker::InferenceComponent"


@pytest.mark.parametrize("cloudformation,engine", [
    # pulumi-aws-native naming_test.go's round trips through its lookup table, and plain names.
    ("IP", "ip"), ("AnIP", "anIp"), ("IPAddress", "ipAddress"), ("ANewIPAddress", "aNewIpAddress"),
    ("ASCIIAndMore", "asciiAndMore"), ("AnASCIIAndMore", "anAsciiAndMore"), ("SomeARNs", "someArns"),
    ("UseEC2Please", "useEc2Please"), ("EC2ManagedKey", "ec2ManagedKey"), ("ACatAndADog", "aCatAndADog"),
    ("EndpointName", "endpointName"), ("MinMemoryRequiredInMb", "minMemoryRequiredInMb"),
])
def test_engine_names_follow_pulumi_aws_natives_rule(cloudformation, engine):
    assert sdk_name(cloudformation) == engine


def sdk_inputs_against_schema(token: str, region: str = "us-east-1") -> tuple[list[str], list[str]]:
    """Walk the SDK's generated Args types (nested input types included) beside the CloudFormation schema: the inputs
    whose name lands on no property of the matching definition, and the read-only properties the SDK offers."""
    schema = resource_schema(cloudformation_type(token, region), region)
    read_only = set(schema.get("readOnlyProperties", []))
    unmapped: list[str] = []
    offered_read_only: list[str] = []

    def walk(sdk_props: dict[str, Any], cfn_schema: dict[str, Any], path: str) -> None:
        named = _named_properties(_resolve(cfn_schema, schema), schema) or {}
        by_sdk_name = {sdk_name(p): p for p in named} | ({"awsId": "Id"} if path == "/properties" else {})
        for key, annotation in sdk_props.items():
            if key not in by_sdk_name:
                unmapped.append(f"{path}: {key}")
                continue
            cfn_path = f"{path}/{by_sdk_name[key]}"
            if cfn_path in read_only:
                offered_read_only.append(cfn_path)
            input_types, element = _input_types_in(annotation)
            item_schema = _resolve(named[by_sdk_name[key]], schema)
            if element and element[0] == "seq":
                input_types, _ = _input_types_in(element[1])
                item_schema, cfn_path = _resolve(item_schema.get("items"), schema), f"{cfn_path}/*"
            for input_type in input_types:
                walk(input_properties(input_type), item_schema, cfn_path)

    args = args_type(token)
    assert args is not None, f"no installed SDK generates {token}"
    walk(input_properties(args), schema, "/properties")
    return unmapped, sorted(set(offered_read_only))


def test_each_sdk_input_of_the_plans_aws_native_types_names_a_cloudformation_property():
    """The naming rule checked against the installed SDK itself: every input its generated Args types offer (nested
    types included) lands on a property of the schema's matching definition, and none at the top is read-only.

    Nested read-only properties are offered, though (the generator drops read-only properties at the top only):
    InferenceComponent's runtimeConfig.currentCopyCount, desiredCopyCount and placementStatus among them. CloudFormation
    ignores them, so `lint_resource` refuses any the plan sets."""
    types = {r.type for name in PLANS for r in aws_native(built(name))}
    assert COMPONENT in types
    for token in sorted(types):
        unmapped, offered_read_only = sdk_inputs_against_schema(token)
        assert unmapped == [], token
        assert [p for p in offered_read_only if p.count("/") == 2] == [], token
    assert "/properties/RuntimeConfig/CurrentCopyCount" in sdk_inputs_against_schema(COMPONENT)[1]


@pytest.mark.parametrize("name", list(PLANS))
def test_every_aws_native_resource_of_the_plan_is_valid_cloudformation(name):
    plan = built(name)
    stack, _, holds_component = PLANS[name]
    resources = aws_native(plan)
    if holds_component:
        assert any(r.type == COMPONENT for r in resources), f"{name} declares no inference component"
    refused = {r.name: refusals(lint_resource(r.type, r.inputs, region_of(stack))) for r in resources}
    assert {k: v for k, v in refused.items() if v} == {}
    for r in resources:  # nothing was dropped on the way
        properties, _ = cloudformation_properties(r.inputs, resource_schema(cloudformation_type(r.type, "us-east-1"),
                                                                            "us-east-1"))
        assert len(properties) == len(r.inputs)


def _component_inputs() -> dict[str, Any]:
    """A fresh copy of the prod-components plan's inference component inputs, with a rolling update policy."""
    (component,) = built("prod-components").of_type(COMPONENT)
    inputs = copy.deepcopy(component.inputs)
    assert inputs["deploymentConfig"]["rollingUpdatePolicy"]["maximumBatchSize"] == {
        "type": "CAPACITY_PERCENT", "value": 25}
    return inputs


def _batch(inputs, **batch):
    inputs["deploymentConfig"]["rollingUpdatePolicy"]["maximumBatchSize"].update(batch)


def _tag(inputs, **tag):
    inputs["tags"][0].update(tag)


@pytest.mark.parametrize("edit,rule,path", [
    (lambda i: _batch(i, type="COPIES"), "E3030", "DeploymentConfig/RollingUpdatePolicy/MaximumBatchSize/Type"),
    (lambda i: _batch(i, value=12.5), "E3012", "DeploymentConfig/RollingUpdatePolicy/MaximumBatchSize/Value"),
    (lambda i: _batch(i, value="25"), "E3012", "DeploymentConfig/RollingUpdatePolicy/MaximumBatchSize/Value"),
    (lambda i: i["deploymentConfig"]["rollingUpdatePolicy"].update(waitIntervalInSeconds=5400), "E3034",
     "DeploymentConfig/RollingUpdatePolicy/WaitIntervalInSeconds"),
    (lambda i: i["deploymentConfig"]["rollingUpdatePolicy"].update(maximumExecutionTimeoutInSeconds=300), "E3034",
     "DeploymentConfig/RollingUpdatePolicy/MaximumExecutionTimeoutInSeconds"),
    (lambda i: i["deploymentConfig"]["autoRollbackConfiguration"].update(alarms=[]), "E3032",
     "DeploymentConfig/AutoRollbackConfiguration/Alarms"),
    (lambda i: i.pop("endpointName"), "E3003", ""),
    (lambda i: i.pop("specification"), "E3018", ""),  # neither Specification nor Specifications
    (lambda i: i.update(inferenceComponentName="mlserve_prod_resnet50"), "E3031", "InferenceComponentName"),
    (lambda i: i.update(variantName="v" * 64), "E3033", "VariantName"),
    (lambda i: i["specification"]["computeResourceRequirements"].update(minMemoryRequiredInMb=64), "E3034",
     "Specification/ComputeResourceRequirements/MinMemoryRequiredInMb"),
    (lambda i: i["runtimeConfig"].update(copyCount=-1), "E3034", "RuntimeConfig/CopyCount"),
    (lambda i: _tag(i, value=""), "E3033", "Tags/0/Value"),
    (lambda i: i["specification"].update(instanceType="ml.g5.xlarge"), "E3002", "Specification/InstanceType"),
    (lambda i: i["runtimeConfig"].update(currentCopyCount=4), "readOnlyProperties", "/properties/RuntimeConfig/CurrentCopyCount"),
], ids=["batch-type-COPIES", "fractional-batch", "string-batch", "wait-over-3600", "timeout-under-600",
        "no-rollback-alarms", "no-endpoint", "no-specification", "underscore-name", "long-variant",
        "memory-under-128", "negative-copies", "empty-tag-value", "instance-type-on-single-spec", "read-only-set"])
def test_the_schema_refuses_what_cloudformation_would(edit, rule, path):
    inputs = _component_inputs()
    assert refusals(lint_resource(COMPONENT, inputs, "us-east-1")) == []
    edit(inputs)
    found = refusals(lint_resource(COMPONENT, inputs, "us-east-1"))
    assert any(r == rule and p.removeprefix("Resources/Resource/Properties").lstrip("/") == path.lstrip("/")
               or r == rule == "readOnlyProperties" and p == path for r, _, p, _ in found), found


def test_an_unknown_input_is_linted_as_a_reference_to_a_stub_parameter():
    inputs = _component_inputs()
    inputs["endpointName"] = Unknown()
    inputs["runtimeConfig"]["copyCount"] = UNKNOWN_MARKER
    properties, stubs = cloudformation_properties(inputs, resource_schema("AWS::SageMaker::InferenceComponent",
                                                                          "us-east-1"))
    assert properties["EndpointName"] == {"Ref": "Unknown1"} and properties["RuntimeConfig"] == {
        "CopyCount": {"Ref": "Unknown2"}}
    assert stubs == {"Unknown1": "String", "Unknown2": "Number"}
    assert refusals(lint_resource(COMPONENT, inputs, "us-east-1")) == []


def test_the_schema_does_not_bound_a_capacity_percent_batch_so_the_5_to_50_rule_stays_the_programs():
    """Before 7e0a5eb an all_at_once component sent MaximumBatchSize {CAPACITY_PERCENT, 100}, which SageMaker refuses
    (a batch is 5-50% of the copies, per the API docs). CloudFormation's schema cannot see it: CapacitySizeValue is an
    integer with no bounds, for COPY_COUNT and CAPACITY_PERCENT alike (botocore carries only min 1). The 5-50% rule
    is checked by the program's config validation and tests/components/test_inference_components.py; should a
    schema update bound the value, this test fails and the oracle above takes the defect over."""
    schema = resource_schema("AWS::SageMaker::InferenceComponent", "us-east-1")
    value = schema["definitions"]["CapacitySizeValue"]
    assert value["type"] == "integer" and not {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                               "enum"} & set(value)
    inputs = _component_inputs()
    _batch(inputs, type="CAPACITY_PERCENT", value=100)
    assert refusals(lint_resource(COMPONENT, inputs, "us-east-1")) == []
