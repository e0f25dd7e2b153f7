"""InVpcDeployer: a CodeBuild project in the stack's private subnets that runs `pulumi up` where the cluster API is.

A private EKS endpoint answers only inside the VPC; GitHub's hosted runners are outside it. The deploy job uploads
the commit's source to this component's bucket and starts the build (components/ci_access.py gives it the start
role); the build runs the buildspec declared here (not one from the source), in the private subnets, leaving through
the NAT gateways on 443 only, and reaching the cluster's private endpoint through the cluster's security group.

Resources:
- the source bucket (stack key, versioned, every public access blocked, TLS only; sources expire after 30 days);
- the build's log group (stack key, the stack's log retention): CodeBuild would otherwise create one unencrypted and
  kept forever;
- the build's security group: no ingress, egress 443 only; and the rule that admits it to the cluster's API;
- the build's role: its log streams, the source objects, the network interfaces CodeBuild makes in these subnets,
  the stack key for the source, the access token's secret where the backend is Pulumi Cloud, and `sts:AssumeRole` on
  the deploy role (which carries what `pulumi up` may do; this role carries nothing else);
- the project: one build at a time, no privileged mode, artifacts and logs under the stack key. The build installs
  the pinned Pulumi CLI (checked against its published checksums), sets up the project, runs the pack offline, then
  `pulumi preview` and `pulumi up` with the pack and the stack's policy config, as the deploy role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .ci_access import CI_PATH, ci_role_name
from .names import resource_name
from .policy_document import Statement, render
from .private_bucket import private_bucket

BUILD_IMAGE = "aws/codebuild/standard:7.0"  # Ubuntu 22.04 with Python 3.11 (the project's runtime)
SOURCE_DAYS = 30


def deploy_project_name(stack: str) -> str:
    return resource_name(stack, "deploy")


def deploy_log_group_name(stack: str) -> str:
    return f"/mlserve/{stack}/deploy"


def deploy_source_bucket(stack: str, account_id: str) -> str:
    """S3 names are global: the account makes it the stack's own (at most 57 characters, its audit bucket's 63)."""
    return f"{resource_name(stack, 'ci')}-{account_id}"


def buildspec(pulumi_version: str) -> str:
    """The build's steps, fixed in the project (a source's own buildspec is never read). The deploy role is taken
    through a profile (`credential_source = EcsContainer`), so its credentials renew during a long `up`."""
    cli = f"pulumi-v{pulumi_version}-linux-x64.tar.gz"
    return json.dumps({"version": 0.2, "env": {"shell": "bash"}, "phases": {
        "install": {"runtime-versions": {"python": "3.11"}, "commands": [
            f"curl -fsSLo {cli} https://get.pulumi.com/releases/sdk/{cli}",
            f"curl -fsSLo checksums.txt https://get.pulumi.com/releases/sdk/pulumi-{pulumi_version}-checksums.txt",
            f"grep ' {cli}$' checksums.txt | sha256sum --check --strict -",
            f"tar -xzf {cli} -C \"$HOME\" && export PATH=\"$HOME/pulumi:$PATH\" && pulumi version",
            "make setup"]},
        "pre_build": {"commands": [
            "aws configure set profile.deploy.role_arn \"$DEPLOY_ROLE_ARN\"",
            "aws configure set profile.deploy.credential_source EcsContainer",
            "aws configure set profile.deploy.role_session_name \"codebuild-$CODEBUILD_BUILD_NUMBER\"",
            "export AWS_PROFILE=deploy",
            "pulumi login \"$PULUMI_BACKEND_URL\"",
            # The stack's own policy config, or its environment's (and the offline pack, before anything changes).
            "export POLICY_CONFIG=\"$(.venv/bin/python -c 'import sys; from policies.check import policy_config_for; "
            "print(policy_config_for(sys.argv[1])[0])' \"$STACK\")\"",
            ".venv/bin/python -m policies.check --stack \"$STACK\" --policy-config \"$POLICY_CONFIG\""]},
        "build": {"commands": [
            "pulumi preview --stack \"$STACK\" --diff --policy-pack policies --policy-pack-config \"$POLICY_CONFIG\"",
            "pulumi up --stack \"$STACK\" --yes --skip-preview --policy-pack policies "
            "--policy-pack-config \"$POLICY_CONFIG\""]}}}, indent=2)


@dataclass(frozen=True)
class InVpcDeployerArgs:
    stack: str
    project_name: str
    """The CodeBuild project (`mlserve-<stack>-deploy`), unique per account and region."""
    source_bucket_name: str
    """Globally unique: `mlserve-<stack>-ci-<account>` (deploy_source_bucket)."""
    account_id: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The stack's private subnets: the build leaves through their NAT gateways."""
    kms_key_arn: pulumi.Input[str]
    """The stack key: source objects, the log group and the build's artifacts."""
    log_group_name: str
    log_retention_days: int
    deploy_role_arn: pulumi.Input[str]
    """What `pulumi up` runs as (components/ci_access.py); the only role the build may assume."""
    backend_url: str
    """`pulumi login`'s target: s3://bucket or https://api.pulumi.com."""
    pulumi_version: str
    """The Pulumi CLI the build installs."""
    access_token_secret_arn: str | None = None
    """Pulumi Cloud backends: the secret holding PULUMI_ACCESS_TOKEN, read into the build's environment."""
    force_destroy: bool = False


class InVpcDeployer(pulumi.ComponentResource):
    project_arn: pulumi.Output[str]
    project_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    source_bucket_name: pulumi.Output[str]
    source_bucket_arn: pulumi.Output[str]
    log_group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: InVpcDeployerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:ci:InVpcDeployer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arn_prefix = pulumi.Output.concat(":", args.region, ":", args.account_id, ":")

        store = private_bucket(f"{name}-source", args.source_bucket_name, args.kms_key_arn, args.force_destroy, self)
        bucket = store.bucket
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-source", bucket=bucket.id, rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-sources", status="Enabled", filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=SOURCE_DAYS),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1),
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=1))],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[store.versioning]))
        objects = pulumi.Output.concat(bucket.arn, "/*")
        aws.s3.BucketPolicy(f"{name}-source", bucket=bucket.id, policy=render(
            Statement(sid="DenyInsecureTransport", effect="Deny", actions=["s3:*"], principals={"AWS": "*"},
                      resources=[bucket.arn, objects], conditions={"Bool": {"aws:SecureTransport": "false"}}),
            Statement(sid="DenyOutdatedTls", effect="Deny", actions=["s3:*"], principals={"AWS": "*"},
                      resources=[bucket.arn, objects], conditions={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=[store.public_block, store.ownership]))

        logs = aws.cloudwatch.LogGroup(f"{name}-build", name=args.log_group_name, kms_key_id=args.kms_key_arn,
                                       retention_in_days=args.log_retention_days, opts=child)

        group = aws.ec2.SecurityGroup(
            f"{name}-build", vpc_id=args.vpc_id, description="mlserve deploy build: no ingress, HTTPS out",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=443, to_port=443,
                                                    cidr_blocks=["0.0.0.0/0"],
                                                    description="AWS APIs, the cluster API, PyPI, get.pulumi.com")],
            opts=child)

        project_arn = pulumi.Output.concat("arn:aws:codebuild", arn_prefix, f"project/{args.project_name}")
        subnet_arns = pulumi.Output.all(args.account_id, args.subnet_ids).apply(
            lambda pair: [f"arn:aws:ec2:{args.region}:{pair[0]}:subnet/{subnet}" for subnet in pair[1]])
        interfaces = pulumi.Output.concat("arn:aws:ec2", arn_prefix, "network-interface/*")
        trust = render(Statement(sid="CodeBuild", actions=["sts:AssumeRole"], resources=(),
                                 principals={"Service": "codebuild.amazonaws.com"}))
        role = aws.iam.Role(f"{name}-runner", name=ci_role_name(args.stack, "runner"), path=CI_PATH,
                            assume_role_policy=trust, opts=child)
        statements = [
            Statement(sid="WriteBuildLog", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                      resources=[pulumi.Output.concat(logs.arn, ":log-stream:*")]),
            Statement(sid="ReadSource", actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[objects]),
            Statement(sid="SourceBucketLocation", actions=["s3:GetBucketLocation"], resources=[bucket.arn]),
            # With the list, a missing source is a 404 (not a 403) in the build's log.
            Statement(sid="ListSource", actions=["s3:ListBucket"], resources=[bucket.arn],
                      conditions={"StringLike": {"s3:prefix": ["*"]}}),
            Statement(sid="UseStackKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[args.kms_key_arn]),
            Statement(sid="DescribeNetwork", actions=[
                "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"]),
            Statement(sid="InterfacesWithItsGroup", actions=["ec2:CreateNetworkInterface"],
                      resources=[interfaces, group.arn, pulumi.Output.concat("arn:aws:ec2", arn_prefix, "subnet/*")]),
            Statement(sid="RemoveInterfaces", actions=["ec2:DeleteNetworkInterface"], resources=[interfaces]),
            Statement(sid="CodeBuildAttachesInterfaces", actions=["ec2:CreateNetworkInterfacePermission"],
                      resources=[interfaces], conditions={
                          "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                          "ArnEquals": {"ec2:Subnet": subnet_arns}}),
            Statement(sid="AssumeDeployRole", actions=["sts:AssumeRole"], resources=[args.deploy_role_arn]),
        ]
        if args.access_token_secret_arn:
            statements.append(Statement(sid="ReadPulumiToken", actions=["secretsmanager:GetSecretValue"],
                                        resources=[args.access_token_secret_arn]))
        policy = aws.iam.RolePolicy(f"{name}-runner", role=role.id, policy=render(*statements), opts=child)

        variables = [aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name=key, value=value, type="PLAINTEXT")
                     for key, value in (("STACK", args.stack), ("DEPLOY_ROLE_ARN", args.deploy_role_arn),
                                        ("PULUMI_BACKEND_URL", args.backend_url), ("PULUMI_SKIP_UPDATE_CHECK", "true"))]
        if args.access_token_secret_arn:
            variables.append(aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                name="PULUMI_ACCESS_TOKEN", value=args.access_token_secret_arn, type="SECRETS_MANAGER"))
        project = aws.codebuild.Project(
            f"{name}-deploy", name=args.project_name, service_role=role.arn, build_timeout=180, queued_timeout=60,
            concurrent_build_limit=1, encryption_key=args.kms_key_arn,
            description=f"pulumi up of stack {args.stack}, inside its VPC",
            source=aws.codebuild.ProjectSourceArgs(
                type="S3", location=pulumi.Output.concat(bucket.bucket, "/main.zip"),
                buildspec=buildspec(args.pulumi_version)),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                compute_type="BUILD_GENERAL1_MEDIUM", image=BUILD_IMAGE, type="LINUX_CONTAINER",
                image_pull_credentials_type="CODEBUILD", privileged_mode=False, environment_variables=variables),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(status="ENABLED",
                                                                                  group_name=logs.name),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED")),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(vpc_id=args.vpc_id, subnets=args.subnet_ids,
                                                          security_group_ids=[group.id]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))

        self._name, self._group = name, group
        self.project_arn = project_arn
        self.project_name = project.name
        self.role_arn = role.arn
        self.source_bucket_name = bucket.bucket
        self.source_bucket_arn = bucket.arn
        self.log_group_arn = logs.arn
        self.register_outputs({"project_name": project.name, "source_bucket": bucket.bucket})

    def admit_to_cluster_api(self, cluster_security_group_id: pulumi.Input[str]) -> None:
        """The EKS cluster's own security group admits the build on 443: its private API answers the build."""
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-cluster-api", security_group_id=cluster_security_group_id,
            referenced_security_group_id=self._group.id, ip_protocol="tcp", from_port=443, to_port=443,
            description="the deploy build reaches the private cluster API", opts=pulumi.ResourceOptions(parent=self))
