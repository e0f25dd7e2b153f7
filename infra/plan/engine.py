"""Run the program under Pulumi's mock engine and record what it declares, as the engine would see it: the plan
(`model.py`). Invokes are answered as AWS would answer them for the stack's account and region."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from .model import PROJECT, Plan, Resource, to_json
from .sdk_schema import autoname_metadata, autoname_property

ACCOUNT_ID = "123456789012"
# Latest EKS-optimized AMI release the SSM parameter would return (for node group release_version).
EKS_AMI_RELEASE = "1.31.7-20250620"


# EC2 ids look like AWS's (`subnet-` and 17 hex digits), so API-model checks see real lengths and patterns.
EC2_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc", "aws:ec2/subnet:Subnet": "subnet", "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg", "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/internetGateway:InternetGateway": "igw", "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc", "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce", "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc", "aws:ec2/launchTemplate:LaunchTemplate": "lt",
}


class UnansweredInvoke(RuntimeError):
    pass


def _service_of(type_token: str) -> tuple[str, str]:
    """`aws:sagemaker/endpointConfiguration:EndpointConfiguration` -> (`sagemaker`, `endpoint-configuration`)."""
    module = type_token.split(":")[1].split("/")[0]
    kind = type_token.split(":")[-1]
    kebab = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
    return module, kebab


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PlanMocks(Mocks):
    """Answers invokes with realistic values and gives each resource the outputs AWS would (ids, ARNs, URLs)."""

    def __init__(self, region: str, account_id: str = ACCOUNT_ID, preview: bool = False):
        self.region = region
        self.account_id = account_id
        self.preview = preview
        self.autonames: dict[tuple[str, str], tuple[str, str]] = {}  # (type, name) -> (input, generated value)

    def _autoname(self, args: MockResourceArgs, outputs: dict[str, Any]) -> None:
        """Fill the one input the provider auto-names (already known at preview), as its Check would.

        Which input that is comes from the installed SDK (`sdk_schema`): a bridged AWS resource's optional `name` or
        its `<x>`/`<x>Prefix` pair, a Kubernetes object's `metadata.name`, nothing for a VPC. The value follows
        Pulumi's convention: logical name plus a random suffix (here a stable digest, so plans are reproducible).
        """
        generated = f"{args.name}-{_digest(args.typ + args.name)[:7]}"
        if autoname_metadata(args.typ):
            metadata = dict(outputs.get("metadata") or {})
            if "name" not in metadata:
                metadata["name"] = generated
                outputs["metadata"] = metadata
                self.autonames[(args.typ, args.name)] = ("metadata", generated)
            return
        prop = autoname_property(args.typ)
        if prop and prop not in outputs and f"{prop}Prefix" not in outputs:
            outputs[prop] = generated
            self.autonames[(args.typ, args.name)] = (prop, generated)

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return self._answer(args), []  # no check failures

    def _answer(self, args: MockCallArgs) -> dict[str, Any]:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:user/mlserve-ci",
                    "userId": "AIDAMLSERVEPLAN", "id": self.account_id}
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region,
                    "description": self.region, "endpoint": f"ec2.{self.region}.amazonaws.com"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {"names": [f"{self.region}{c}" for c in letters],
                    "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))], "id": self.region}
        if token == "aws:lb/getLoadBalancer:getLoadBalancer":
            name = str(args.args.get("name"))
            return {"arn": f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:loadbalancer/app/{name}/"
                           f"{_digest(name)[:16]}", "name": name, "loadBalancerType": "application",
                    "dnsName": f"internal-{name}-{_digest(name)[:10]}.{self.region}.elb.amazonaws.com"}
        if token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            # The plan never sees a real secret: a placeholder that says so (and the program marks it secret).
            arn = str(args.args.get("secretId"))
            return {"arn": arn, "secretId": arn, "secretString": "<secret read at deploy time>",
                    "versionId": "plan", "versionStages": ["AWSCURRENT"], "id": f"{arn}|AWSCURRENT"}
        if token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args.get("name"), "value": EKS_AMI_RELEASE, "type": "String",
                    "arn": f"arn:aws:ssm:{self.region}::parameter{args.args.get('name')}", "id": args.args.get("name")}
        raise UnansweredInvoke(f"the offline plan has no answer for invoke {token}; add one in infra/plan/engine.py")

    def new_resource(self, args: MockResourceArgs):
        outputs = dict(args.inputs)
        if args.custom:
            self._autoname(args, outputs)
        if self.preview and args.custom and not args.typ.startswith("pulumi:providers:"):
            # As in `pulumi preview`: what AWS computes (ids, ARNs, URLs) is not known yet.
            return "", outputs
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id", outputs
        service, kind = _service_of(args.typ)
        named_by = autoname_property(args.typ) or "name"
        physical = outputs.get(named_by) if isinstance(outputs.get(named_by), str) else args.name
        arn = f"arn:aws:{service}:{self.region}:{self.account_id}:{kind}/{physical}"
        resource_id = physical
        if args.typ in EC2_ID_PREFIXES:
            resource_id = f"{EC2_ID_PREFIXES[args.typ]}-{_digest(args.typ + args.name)[:17]}"
            arn = f"arn:aws:ec2:{self.region}:{self.account_id}:{kind}/{resource_id}"
        elif args.typ == "aws:appautoscaling/policy:Policy":
            # Application Auto Scaling's own format (what a CloudWatch alarm's scaling action names).
            arn = (f"arn:aws:autoscaling:{self.region}:{self.account_id}:scalingPolicy:{_digest(args.name)[:8]}-"
                   f"{_digest(args.name + 'u')[:4]}:resource/{args.inputs.get('serviceNamespace', 'sagemaker')}/"
                   f"{args.inputs.get('resourceId', '')}:policyName/{physical}")
        elif args.typ == "aws:s3/bucket:Bucket":
            physical = outputs.get("bucket") or args.name
            arn, resource_id = f"arn:aws:s3:::{physical}", physical
            outputs["bucket"] = physical
        elif service == "iam":  # a role's or policy's path is part of its ARN (`role/mlserve-ci/<name>`)
            path = outputs.get("path") if isinstance(outputs.get("path"), str) else "/"
            arn = f"arn:aws:iam::{self.account_id}:{kind}{path}{physical}"
        elif args.typ == "aws:kms/key:Key":
            resource_id = f"mrk-{_digest(args.name)[:32]}"
            outputs["keyId"] = resource_id
            arn = f"arn:aws:kms:{self.region}:{self.account_id}:key/{resource_id}"
        elif args.typ == "aws:ecr/repository:Repository":
            outputs["repositoryUrl"] = f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{physical}"
            arn = f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{physical}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            arn = f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{physical}"
        elif args.typ == "aws:sns/topic:Topic":
            arn = f"arn:aws:sns:{self.region}:{self.account_id}:{physical}"
        elif args.typ == "aws:apigateway/restApi:RestApi":
            resource_id = _digest(args.name)[:10]
            outputs["rootResourceId"] = _digest(args.name + "/")[:10]
            outputs["executionArn"] = f"arn:aws:execute-api:{self.region}:{self.account_id}:{resource_id}"
            arn = f"arn:aws:apigateway:{self.region}::/restapis/{resource_id}"
        elif args.typ == "aws:apigateway/stage:Stage":
            api, stage = outputs.get("restApi"), outputs.get("stageName")
            outputs["invokeUrl"] = f"https://{api}.execute-api.{self.region}.amazonaws.com/{stage}"
            outputs["executionArn"] = f"arn:aws:execute-api:{self.region}:{self.account_id}:{api}/{stage}"
            arn = f"arn:aws:apigateway:{self.region}::/restapis/{api}/stages/{stage}"
        elif args.typ == "aws:apigateway/resource:Resource":
            resource_id = _digest(args.name)[:6]
        elif args.typ == "aws:wafv2/webAcl:WebAcl":
            resource_id = str(uuid.UUID(_digest(args.name)[:32]))
            arn = f"arn:aws:wafv2:{self.region}:{self.account_id}:regional/webacl/{physical}/{resource_id}"
        elif args.typ == "aws:sqs/queue:Queue":
            # SQS: the ARN has no resource type, and the id is the queue URL (what QueuePolicy's queue_url takes).
            arn = f"arn:aws:sqs:{self.region}:{self.account_id}:{physical}"
            resource_id = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{physical}"
            outputs["url"] = resource_id
        elif args.typ == "aws:cloudwatch/eventRule:EventRule":
            arn = f"arn:aws:events:{self.region}:{self.account_id}:rule/{physical}"
        elif args.typ == "aws:eks/cluster:Cluster":
            oidc = f"https://oidc.eks.{self.region}.amazonaws.com/id/5C3D0F0E1A2B3C4D5E6F7A8B9C0D1E2F"
            outputs.update(endpoint=f"https://5C3D0F0E1A2B.gr7.{self.region}.eks.amazonaws.com",
                           certificateAuthority={"data": "TU9DSy1DQS1EQVRB"},
                           identities=[{"oidcs": [{"issuer": oidc}]}],
                           vpcConfig={**(outputs.get("vpcConfig") or {}),  # the security group EKS creates
                                      "clusterSecurityGroupId": f"sg-{_digest(args.name + '/cluster')[:17]}"})
        if args.typ == "aws:lb/loadBalancer:LoadBalancer":
            internal = "internal-" if outputs.get("internal") else ""
            outputs.setdefault("dnsName", f"{internal}{physical}-{_digest(args.name)[:10]}.elb.{self.region}.amazonaws.com")
        if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs.setdefault("latestVersion", 1)  # EC2 numbers a new template's first version 1
        outputs.setdefault("arn", arn)
        outputs.setdefault("id", resource_id)
        return resource_id, outputs


def conceal(value: Any, stand_ins: Collection[str]) -> Any:
    """Inputs built from an encrypted config value, as `pulumi preview` without the secrets provider sees them: a
    secret of unknown value (the engine's secret wrapper around the unknown marker). A text that contains a stand-in
    is concealed whole, as an Output built from a secret is a secret."""
    if not stand_ins:
        return value
    if rpc.is_rpc_secret(value):
        return rpc.wrap_rpc_secret(conceal(rpc.unwrap_rpc_secret(value), stand_ins))
    if isinstance(value, str):
        return rpc.wrap_rpc_secret(Unknown()) if any(s in value for s in stand_ins) else value
    if isinstance(value, dict):
        return {k: conceal(v, stand_ins) for k, v in value.items()}
    if isinstance(value, list):
        return [conceal(v, stand_ins) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    """The mock monitor, recording each registration with its parent and engine-accurate URN."""

    def __init__(self, mocks: Mocks, stand_ins: Collection[str] = ()):
        super().__init__(mocks)
        self.records: list[Resource] = []
        self.stand_ins = tuple(stand_ins)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine qualifies a child's type with its parent's full type chain, and leaves the stack out of it.
        if parent and "::pulumi:pulumi:Stack::" not in parent:
            type_ = parent.split("::")[2] + "$" + type_
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            parent = request.parent if request.parent and "::pulumi:pulumi:Stack::" not in request.parent else None
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            # The provider's Check adds the auto-name before a policy pack sees the inputs.
            autoname = getattr(self.mocks, "autonames", {}).get((request.type, request.name))
            if autoname and autoname[0] == "metadata":
                inputs["metadata"] = {**(inputs.get("metadata") or {}), "name": autoname[1]}
            elif autoname:
                inputs.setdefault(autoname[0], autoname[1])
            inputs = conceal(inputs, self.stand_ins)
            self.records.append(Resource(urn=response.urn, type=request.type, name=request.name, parent=parent,
                                         custom=bool(request.custom), inputs=inputs, id=response.id,
                                         provider=request.provider if request.custom else "",
                                         dependencies=sorted(request.dependencies),
                                         aliases=[json_format.MessageToDict(a.spec) for a in request.aliases],
                                         property_dependencies={k: sorted(v.urns) for k, v in
                                                                request.propertyDependencies.items() if v.urns}))
        return response


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK walks the Python stack at every registration to tell the engine where a resource was declared (for
    its diagnostics); the plan records no source positions, and the walk is an eighth of a plan's time
    (`python -m bench.plan`). Skipped while the mock engine runs, restored after."""
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime.proto import source_pb2

    original = sdk_resource._get_stack_trace
    sdk_resource._get_stack_trace = source_pb2.StackTrace  # an empty trace, as when no user frame is found
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = original


def run(program: Callable[[], dict[str, Any]], *, stack: str, region: str, account_id: str | None = None,
        preview: bool = False, stand_ins: Collection[str] = ()) -> Plan:
    """Call `program` under the mock engine and return what it declared and its resolved outputs. The caller is in
    the stack's own account when the config names one (the provider would refuse any other). `stand_ins`: the texts
    validation put where the stack file holds encrypted values; what is built from them is recorded as secret and
    unknown, and an output built from one is "[secret]"."""
    mocks = PlanMocks(region, account_id=account_id or ACCOUNT_ID, preview=preview)
    monitor = RecordingMonitor(mocks, stand_ins)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    outputs: dict[str, Any] = {}

    async def resolve(declared: dict[str, Any]) -> None:
        for key, value in declared.items():
            output = pulumi.Output.from_input(value)
            resolved = await output.future(with_unknowns=True)
            concealed = json.dumps(to_json(resolved)) != json.dumps(to_json(conceal(resolved, stand_ins)))
            outputs[key] = "[secret]" if concealed or await output.is_secret() else resolved

    @pulumi.runtime.test
    def body():
        return pulumi.Output.from_input(asyncio.ensure_future(resolve(program())))

    with _no_source_positions():
        body()
    # The mock engine registers resources as their inputs resolve, in an order that varies from run to run; by URN
    # the same program writes the same plan, byte for byte (review diffs and CI caches depend on it).
    return Plan(stack=stack, resources=sorted(monitor.records, key=lambda r: r.urn), outputs=outputs)


def dumps(plan: Plan) -> str:
    return json.dumps(plan.as_json(), indent=2, sort_keys=False)
