"""CiAccess: the identities GitHub Actions deploys the stack with, each trusted by exactly one token subject.

GitHub's OIDC provider (`token.actions.githubusercontent.com`, one per account: created here, or the account's
existing one) and, under the IAM path `/mlserve-ci/`:

- `mlserve-<stack>-deploy`: what `pulumi up` runs as. Trusted by the deploy job's token alone (audience
  `sts.amazonaws.com`, subject `repo:<owner>/<repo>:environment:<environment>`: only a job of that repository in that
  GitHub environment, whose reviewers approve it), or, where the build runs in the VPC, by the CodeBuild runner's
  role alone. It carries AWS's PowerUserAccess (every service but IAM, Organizations and Account: `pulumi up` creates
  and deletes across a dozen services) and IAM only on the stack's own names (`mlserve-<stack>-*` roles, policies
  and instance profiles, the cluster's OIDC provider, the service-linked roles the stack's services need). The CI
  identities live under their own path, outside those names: a deploy cannot change what CI may do; an operator's
  `pulumi up` does.
- `mlserve-<stack>-preview` (the job runs `pulumi`): pull requests' `pulumi preview`, trusted by
  `repo:<owner>/<repo>:pull_request` (forks get no token): AWS's ReadOnlyAccess, decrypting with the secrets
  provider's key, and the state backend's lock objects.
- `mlserve-<stack>-start` (the build runs in the VPC): trusted by the deploy job's token; uploads the commit's
  source, starts the deploy build and reads its log. Nothing else: the build's own role assumes the deploy role.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .names import resource_name
from .policy_document import Statement, render

GITHUB_ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
CI_PATH = "/mlserve-ci/"
POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# Services whose service-linked role the stack's first `up` may create (EKS and its node groups, EC2 Auto Scaling
# and load balancers for the nodes and the controller's ALBs, SageMaker endpoints' Application Auto Scaling).
SERVICE_LINKED = ("eks.amazonaws.com", "eks-nodegroup.amazonaws.com", "autoscaling.amazonaws.com",
                  "elasticloadbalancing.amazonaws.com", "sagemaker.application-autoscaling.amazonaws.com")


def ci_role_name(stack: str, purpose: str) -> str:
    """`mlserve-prod-deploy`: the role's name; its ARN carries the path `/mlserve-ci/` too."""
    return resource_name(stack, purpose)


def ci_role_arn(account_id: str, stack: str, purpose: str) -> str:
    return f"arn:aws:iam::{account_id}:role{CI_PATH}{ci_role_name(stack, purpose)}"


def github_subject(repository: str, environment: str | None = None) -> str:
    """The `sub` claim of a job's token: `repo:o/r:environment:e` for a job in a GitHub environment (the form a job
    with `environment:` always gets), `repo:o/r:pull_request` for a pull request's job."""
    return f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:pull_request"


def github_trust(provider_arn: pulumi.Input[str], subject: str) -> pulumi.Output[str]:
    """Exactly one subject and the STS audience, both StringEquals: no wildcard reaches another branch or repo."""
    return render(Statement(
        sid="GitHubActionsJob", actions=["sts:AssumeRoleWithWebIdentity"], resources=(),
        principals={"Federated": provider_arn},
        conditions={"StringEquals": {f"{GITHUB_ISSUER}:aud": AUDIENCE, f"{GITHUB_ISSUER}:sub": subject}}))


@dataclass(frozen=True)
class CodeBuildTarget:
    """The in-VPC runner the start role drives (components/in_vpc_deployer.py)."""
    runner_role_arn: pulumi.Input[str]
    """The build's own role: the deploy role's only trust."""
    project_arn: pulumi.Input[str]
    source_bucket_arn: pulumi.Input[str]
    """Where the job uploads the commit's source (`<sha>.zip`)."""
    log_group_arn: pulumi.Input[str]
    """The build's log group, which the job follows."""


@dataclass(frozen=True)
class CiAccessArgs:
    stack: str
    """Names the roles (`mlserve-<stack>-deploy`, `-preview`, `-start`) and scopes the deploy role's IAM."""
    account_id: pulumi.Input[str]
    region: str
    repository: str
    """The GitHub repository (owner/name) whose jobs may assume the roles."""
    environment: str
    """The GitHub environment of the deploy job: the deploy (or start) role trusts only its token."""
    manage_oidc_provider: bool
    """Create GitHub's OIDC provider here (one per account), or use the account's existing one."""
    kms_key_arn: pulumi.Input[str]
    """The stack key: the start role encrypts the uploaded source with it."""
    secrets_key_alias: str
    """The secrets provider's KMS alias (awskms://alias/<alias>): previews decrypt the stack's secrets with it."""
    state_bucket: str | None = None
    """An S3 backend's bucket: previews take the stack's lock there (`.pulumi/locks/`)."""
    codebuild: CodeBuildTarget | None = None
    """Set: `pulumi up` runs in this build (the deploy role trusts its role; the job gets the start role). Unset:
    `pulumi up` runs in the job (the deploy role trusts the job; pull requests get the preview role)."""


class CiAccess(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    job_role_arn: pulumi.Output[str]
    """The role the deploy job assumes: the deploy role, or the start role where the build runs in the VPC."""
    preview_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: CiAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlserve:ci:CiAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        iam = pulumi.Output.concat("arn:aws:iam::", args.account_id, ":")
        if args.manage_oidc_provider:
            provider_arn: pulumi.Input[str] = aws.iam.OpenIdConnectProvider(
                f"{name}-github", url=f"https://{GITHUB_ISSUER}", client_id_lists=[AUDIENCE], opts=child).arn
        else:
            provider_arn = pulumi.Output.concat(iam, f"oidc-provider/{GITHUB_ISSUER}")
        job = github_subject(args.repository, args.environment)

        deploy_trust = render(Statement(
            sid="CodeBuildRunner", actions=["sts:AssumeRole"], resources=(),
            principals={"AWS": args.codebuild.runner_role_arn})) if args.codebuild else github_trust(provider_arn, job)
        deploy = aws.iam.Role(f"{name}-deploy", name=ci_role_name(args.stack, "deploy"), path=CI_PATH,
                              assume_role_policy=deploy_trust, max_session_duration=4 * 3600, opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-deploy-power-user", role=deploy.name, policy_arn=POWER_USER, opts=child)
        own = resource_name(args.stack)
        aws.iam.RolePolicy(f"{name}-deploy-iam", role=deploy.id, policy=render(
            Statement(sid="StackRoles", actions=[
                "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
                "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags", "iam:PutRolePolicy", "iam:GetRolePolicy",
                "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:PassRole"],
                resources=[pulumi.Output.concat(iam, f"role/{own}-*")]),
            Statement(sid="StackPolicies", actions=[
                "iam:CreatePolicy", "iam:DeletePolicy", "iam:GetPolicy", "iam:GetPolicyVersion",
                "iam:ListPolicyVersions", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:TagPolicy",
                "iam:UntagPolicy"], resources=[pulumi.Output.concat(iam, f"policy/{own}-*")]),
            Statement(sid="StackInstanceProfiles", actions=[
                "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
                "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile"],
                resources=[pulumi.Output.concat(iam, f"instance-profile/{own}-*")]),
            Statement(sid="ClusterOidcProvider", actions=[
                "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider",
                "iam:GetOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint"],
                resources=[pulumi.Output.concat(iam, f"oidc-provider/oidc.eks.{args.region}.amazonaws.com/id/*")]),
            Statement(sid="ReadManagedPolicies", actions=["iam:GetPolicy", "iam:GetPolicyVersion"],
                      resources=["arn:aws:iam::aws:policy/*"]),
            Statement(sid="ServiceLinkedRoles", actions=["iam:CreateServiceLinkedRole"],
                      resources=[pulumi.Output.concat(iam, "role/aws-service-role/*")],
                      conditions={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}}),
        ), opts=child)
        self.deploy_role_arn = deploy.arn
        self.job_role_arn = deploy.arn
        self.preview_role_arn = None

        if args.codebuild is None:
            preview = aws.iam.Role(
                f"{name}-preview", name=ci_role_name(args.stack, "preview"), path=CI_PATH,
                assume_role_policy=github_trust(provider_arn, github_subject(args.repository)), opts=child)
            aws.iam.RolePolicyAttachment(f"{name}-preview-read-only", role=preview.name, policy_arn=READ_ONLY,
                                         opts=child)
            statements = [Statement(
                sid="DecryptStackSecrets", actions=["kms:Decrypt"],
                resources=[pulumi.Output.concat("arn:aws:kms:", args.region, ":", args.account_id, ":key/*")],
                conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/{args.secrets_key_alias}"}})]
            if args.state_bucket:
                statements.append(Statement(
                    sid="StackLock", actions=["s3:PutObject", "s3:DeleteObject"],
                    resources=[f"arn:aws:s3:::{args.state_bucket}/.pulumi/locks/*"]))
            aws.iam.RolePolicy(f"{name}-preview", role=preview.id, policy=render(*statements), opts=child)
            self.preview_role_arn = preview.arn
        else:
            target = args.codebuild
            start = aws.iam.Role(f"{name}-start", name=ci_role_name(args.stack, "start"), path=CI_PATH,
                                 assume_role_policy=github_trust(provider_arn, job), opts=child)
            aws.iam.RolePolicy(f"{name}-start", role=start.id, policy=render(
                Statement(sid="UploadSource", actions=["s3:PutObject"],
                          resources=[pulumi.Output.concat(target.source_bucket_arn, "/*")]),
                Statement(sid="EncryptSource", actions=["kms:GenerateDataKey"], resources=[args.kms_key_arn]),
                Statement(sid="RunDeployBuild", actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                          resources=[target.project_arn]),
                Statement(sid="FollowBuildLog", actions=["logs:GetLogEvents"],
                          resources=[pulumi.Output.concat(target.log_group_arn, ":log-stream:*")]),
            ), opts=child)
            self.job_role_arn = start.arn

        self.register_outputs({"deploy_role_arn": self.deploy_role_arn, "job_role_arn": self.job_role_arn})
