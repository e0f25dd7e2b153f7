"""Importing this package registers every rule in `policies.framework.REGISTRY`."""

from . import availability, cluster, delivery, edge, encryption, hygiene, identity, network  # noqa: F401
