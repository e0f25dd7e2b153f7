"""The path changes take to AWS: builds that run `pulumi up` are private, logged and encrypted, and a private cluster
is deployed from inside its VPC."""

import re

from ..framework import as_list, of_type, stack_rule
from .identity import GITHUB_ISSUER

PROJECT = "aws:codebuild/project:Project"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSPHRASE|PRIVATE_KEY|ACCESS_KEY)", re.IGNORECASE)


@stack_rule("ci-build-hardened",
            description="A CodeBuild project runs in the VPC, unprivileged, with its own buildspec, its artifacts under "
                        "a KMS key and its logs in a declared KMS-encrypted log group; no secret in plain text.",
            fix="Use components/in_vpc_deployer.py's InVpcDeployer: vpc_config with the private subnets and a "
                "security group, privileged_mode false, the buildspec inline in the project, encryption_key the stack "
                "key, logs_config.cloudwatch_logs.group_name a log group the stack declares with kms_key_id, secrets "
                "as SECRETS_MANAGER or PARAMETER_STORE variables.")
def ci_build_hardened(resources, config):
    groups = {str(g.props.get("name")) for g in of_type(resources, LOG_GROUP)}
    for project in of_type(resources, PROJECT):
        props, name = project.props, project.props.get("name") or project.name
        vpc = props.get("vpcConfig") or {}
        if not as_list(vpc.get("subnets")) or not as_list(vpc.get("securityGroupIds")):
            yield f"build {name} runs outside the VPC (no vpcConfig subnets and security groups)", project.urn
        environment = props.get("environment") or {}
        if environment.get("privilegedMode"):
            yield f"build {name} runs privileged (a Docker daemon with root on the host)", project.urn
        plain = [v.get("name") for v in as_list(environment.get("environmentVariables"))
                 if (v.get("type") or "PLAINTEXT") == "PLAINTEXT" and SECRET_NAME.search(str(v.get("name")))]
        if plain:
            yield f"build {name} keeps {', '.join(sorted(plain))} in plain text", project.urn
        if not (props.get("source") or {}).get("buildspec"):
            yield f"build {name} runs the buildspec of whatever source it is given: declare it in the project", \
                project.urn
        if not props.get("encryptionKey"):
            yield f"build {name} encrypts its artifacts with the AWS-managed key, not the stack key", project.urn
        logs = props.get("logsConfig") or {}
        cloudwatch = logs.get("cloudwatchLogs") or {}
        group = cloudwatch.get("groupName")
        if cloudwatch.get("status") == "DISABLED" or not group:
            yield f"build {name} does not log to a log group the stack declares: CodeBuild would create " \
                  f"/aws/codebuild/{name} unencrypted and keep it forever", project.urn
        elif str(group) not in groups:  # declared: log-group-kms-retention judges its key and retention
            yield f"build {name} logs to {group}, a log group the stack does not declare", project.urn
        s3 = logs.get("s3Logs") or {}
        if s3.get("status") == "ENABLED" and s3.get("encryptionDisabled"):
            yield f"build {name} writes its logs to S3 unencrypted", project.urn


@stack_rule("private-cluster-deployed-in-vpc",
            description="Where a stack's EKS API is private and GitHub Actions deploys it, `pulumi up` runs in a build "
                        "inside the VPC (GitHub's hosted runners cannot reach the API).",
            fix="Set mlserve:ci.runner: codebuild (components/in_vpc_deployer.py), or open the API to the runners "
                "(not in prod: eks-private-endpoint).")
def private_cluster_deployed_in_vpc(resources, config):
    private = [c for c in of_type(resources, "aws:eks/cluster:Cluster")
               if not (c.props.get("vpcConfig") or {}).get("endpointPublicAccess")]
    github_deploys = [r for r in of_type(resources, "aws:iam/role:Role") if f"{GITHUB_ISSUER}:sub" in str(
        r.props.get("assumeRolePolicy")) and ":environment:" in str(r.props.get("assumeRolePolicy"))]
    in_vpc = [p for p in of_type(resources, PROJECT) if as_list((p.props.get("vpcConfig") or {}).get("subnets"))]
    if private and github_deploys and not in_vpc:
        for cluster in private:
            yield (f"cluster {cluster.props.get('name') or cluster.name} answers only inside its VPC, and the stack is "
                   f"deployed by a GitHub Actions job ({github_deploys[0].props.get('name')}) that runs outside it"),\
                cluster.urn
