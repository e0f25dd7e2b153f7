"""What the arg builders share: the stack's foundation every deployment builds on, the cluster platform KServe
deployments run on, the stack's tags, and the one way to read a value the config rules already require."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pulumi

from components.cluster_addons import ClusterAddons
from components.eks_cluster import EksCluster
from components.encryption import Encryption
from components.model_store import ModelStore
from components.names import STACK_TAG
from components.network import Network
from infra.config import StackConfig


@dataclass(frozen=True)
class StackBase:
    """What every deployment of a stack builds on: its config, account, key, network, model store and alert topic."""
    cfg: StackConfig
    stack: str
    account_id: pulumi.Input[str]
    encryption: Encryption
    network: Network
    store: ModelStore
    topic_arn: pulumi.Output[str]
    invoke: pulumi.InvokeOptions
    """Data-source calls through the stack's provider (its region)."""


@dataclass(frozen=True)
class KubernetesPlatform:
    """The cluster, its add-ons, and what serving objects wait for (add-ons, and the GPU pools when declared)."""
    eks: EksCluster
    addons: ClusterAddons
    ready: list[pulumi.Resource]


def stack_tags(cfg: StackConfig, stack: str) -> dict[str, str]:
    """On every AWS resource (provider default tags) and every node Karpenter launches (which those do not reach)."""
    return {**cfg.tags, STACK_TAG: stack, "managed-by": "pulumi"}


T = TypeVar("T")


def validated(value: T | None) -> T:
    """A value the config rules already require here (infra/config/rules.py); None would be a bug, not a default."""
    if value is None:
        raise ValueError("a value validated as required is missing")
    return value
