"""Names are derived here once, so a resource's name says which stack, deployment and role it belongs to."""

PROJECT = "mlserve"


def resource_name(stack: str, *parts: str) -> str:
    """`resource_name("prod", "resnet50", "endpoint")` -> `mlserve-prod-resnet50-endpoint`."""
    return "-".join([PROJECT, stack, *parts])
