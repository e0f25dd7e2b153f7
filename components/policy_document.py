"""IAM policy documents built from data, so no component string-concatenates JSON.

Values may be `pulumi.Output`s (ARNs of resources not created yet); `render` resolves them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

Value = Any  # str | pulumi.Output[str]


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[Value] = ("*",)
    effect: str = "Allow"
    principals: dict[str, Value | Sequence[Value]] | None = None
    conditions: dict[str, dict[Value, Value | Sequence[Value]]] = field(default_factory=dict)  # keys may be Outputs too

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals is not None:
            body["Principal"] = self.principals
        body["Action"] = list(self.actions)
        if self.resources:  # trust policies have none
            body["Resource"] = list(self.resources)
        if self.conditions:
            body["Condition"] = self.conditions
        return body


def render(*statements: Statement) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [s.as_dict() for s in statements]})


def via_service(service: str, key_arn: Value) -> dict[str, dict[str, Value]]:
    """Use of a KMS key only on behalf of one AWS service in the key's own region (`kms:ViaService`,
    `s3.us-east-1.amazonaws.com`): a role that reads encrypted objects cannot call KMS directly with the key."""
    endpoint = pulumi.Output.from_input(key_arn).apply(lambda arn: f"{service}.{arn.split(':')[3]}.amazonaws.com")
    return {"StringEquals": {"kms:ViaService": endpoint}}


def assume_role_policy(service: str, conditions: dict | None = None) -> pulumi.Output[str]:
    """Trust policy for one AWS service principal."""
    return render(Statement(sid="TrustService", actions=["sts:AssumeRole"], resources=(),
                            principals={"Service": service}, conditions=conditions or {}))
