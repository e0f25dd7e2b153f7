"""The platform in one screen: validated stack config in, components out.

This is the only place that maps configuration to component args. It declares nothing at import time: `declare`
is called by `infra/__main__.py` under the Pulumi CLI and by the offline plan and tests under the mock engine.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.encryption import Encryption, EncryptionArgs
from components.model_store import ModelStore, ModelStoreArgs
from components.network import Network, NetworkArgs
from infra.config import StackConfig
from infra.naming import resource_name


def declare(cfg: StackConfig, stack: str) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (the caller exports them)."""
    provider = aws.Provider("aws", region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(
        tags={**cfg.tags, "mlserve:stack": stack, "managed-by": "pulumi"}))
    with_provider = pulumi.ResourceOptions(provider=provider)
    invoke = pulumi.InvokeOptions(provider=provider)
    account_id = aws.get_caller_identity(opts=invoke).account_id
    zones = aws.get_availability_zones(state="available", opts=invoke).names[: cfg.network.availability_zones]

    encryption = Encryption(resource_name(stack), EncryptionArgs(
        alias=resource_name(stack), account_id=account_id, region=cfg.region,
        deletion_window_days=30 if cfg.is_prod else 7), opts=with_provider)

    network = Network(resource_name(stack), NetworkArgs(
        cidr=cfg.network.cidr, availability_zones=zones, nat_gateway_per_az=cfg.is_prod, region=cfg.region,
        kms_key_arn=encryption.key_arn, flow_log_retention_days=cfg.network.flow_log_retention_days),
        opts=with_provider)

    store = ModelStore(resource_name(stack), ModelStoreArgs(
        bucket_name=cfg.model_store.bucket, kms_key_arn=encryption.key_arn,
        image_repositories=tuple(sorted({d.image.repository for d in cfg.deployments})),
        noncurrent_version_days=cfg.model_store.noncurrent_version_days, force_destroy=not cfg.is_prod),
        opts=with_provider)

    return {
        "region": cfg.region,
        "kms_key_arn": encryption.key_arn,
        "vpc_id": network.vpc_id,
        "private_subnet_ids": network.private_subnet_ids,
        "model_bucket": store.bucket_name,
        "image_repositories": store.repository_urls,
    }
