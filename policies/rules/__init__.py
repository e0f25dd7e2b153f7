"""Importing this package registers every rule in `policies.framework.REGISTRY`."""

from . import (  # noqa: F401
    availability,
    cluster,
    delivery,
    delivery_path,
    edge,
    encryption,
    evidence,
    hygiene,
    identity,
    network,
    workloads,
)
