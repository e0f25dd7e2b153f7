"""Importing this package registers every rule in `policies.framework.REGISTRY`."""

from . import (  # noqa: F401
    audit,
    availability,
    cluster,
    cost,
    delivery,
    delivery_path,
    encryption,
    gateway,
    identity,
    llm,
    network,
    provenance,
    workloads,
)
