"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies`. It starts a gRPC server and blocks:
never import this module (tests and `python -m policies.check` use `policies.pack`)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import PACK_NAME, all_policies

PolicyPack(name=PACK_NAME, policies=all_policies(), enforcement_level=EnforcementLevel.MANDATORY,
           description="mlserve guardrails: encryption, private networking, least privilege, safe delivery, cost.")
