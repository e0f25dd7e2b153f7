"""What IAM grants mean at run time, beyond the policy grammar (parliament, moto) the other tests check."""

import fnmatch
import json

import pytest

from tests.harness import stack_plan


def statements(plan):
    for r in plan.resources:
        text = r.inputs.get("policy")
        if isinstance(text, str) and '"Statement"' in text and r.type == "aws:iam/rolePolicy:RolePolicy":
            for s in json.loads(text)["Statement"]:
                if s.get("Effect") == "Allow":
                    actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                    resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                    yield r.name, actions, resources, s.get("Condition", {})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_a_role_may_read_it_may_also_list_so_a_missing_key_is_404_not_403(stack):
    # S3 answers GetObject on a missing key with 403 AccessDenied unless the caller may also ListBucket there (S3
    # API reference, GetObject: "Permissions"); code that treats a missing object as a miss (the engine store, the
    # drift job's baseline) would otherwise read a denial. So every read grant comes with the list of its prefix.
    policies: dict[str, list] = {}
    for name, actions, resources, conditions in statements(stack_plan(stack)):
        policies.setdefault(name, []).append((actions, resources, conditions))
    unlisted = []
    for name, grants in policies.items():
        listed = [(res, cond) for actions, res, cond in grants if "s3:ListBucket" in actions]
        for actions, resources, _ in grants:
            if "s3:GetObject" not in actions:
                continue
            for arn in resources:
                bucket, _, key = arn.removeprefix("arn:aws:s3:::").partition("/")
                covered = any(f"arn:aws:s3:::{bucket}" in res and any(
                    fnmatch.fnmatchcase(key, pattern) or pattern == key
                    for pattern in cond.get("StringLike", {}).get("s3:prefix", []))
                    for res, cond in listed)
                if not covered:
                    unlisted.append(f"{name}: {arn}")
    assert unlisted == []
