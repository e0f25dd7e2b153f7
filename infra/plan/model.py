"""The plan: what a program declares, resource by resource, in the shape `pulumi preview` hands a policy pack (engine
URNs, parents, inputs with the engine's camelCase names, secrets wrapped, unknowns marked). The cost estimate, the
policy check and the tests read it; `engine.py` makes it by running the program under the mock engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc

PROJECT = "mlserve"
# The engine's marker for a value not known until apply; the policy SDK reads it back as unknown.
UNKNOWN_MARKER = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    id: str = ""  # what the mock engine answered; not part of the plan JSON
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)  # input -> URNs it came from
    provider: str = ""  # the provider reference `<urn>::<id>` of a custom resource; "" for the default provider
    dependencies: list[str] = field(default_factory=list)  # URNs of explicit and input dependencies
    aliases: list[dict[str, Any]] = field(default_factory=list)  # alias specs as sent: {"noParent": True} etc.

    def as_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent, "custom": self.custom,
                "inputs": to_json(self.inputs), "propertyDependencies": self.property_dependencies,
                "provider": self.provider, "dependencies": self.dependencies, "aliases": self.aliases}


@dataclass
class Plan:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Resource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}: {[r.name for r in found]}")
        return found[0]

    def by_id(self, resource_id: str) -> Resource:
        return next(r for r in self.resources if r.id == resource_id)

    def children_of(self, urn: str) -> list[Resource]:
        return [r for r in self.resources if r.parent == urn]

    def as_json(self) -> dict[str, Any]:
        return {"project": PROJECT, "stack": self.stack, "resources": [r.as_json() for r in self.resources],
                "outputs": to_json(self.outputs)}


# The wire format's markers for assets and archives, as the SDK itself writes them.
SIG_KEY, ASSET_SIG, ARCHIVE_SIG = rpc._special_sig_key, rpc._special_asset_sig, rpc._special_archive_sig


def to_json(value: Any) -> Any:
    if isinstance(value, Unknown):
        return UNKNOWN_MARKER
    if isinstance(value, pulumi.AssetArchive):
        return {SIG_KEY: ARCHIVE_SIG, "assets": {k: to_json(v) for k, v in value.assets.items()}}
    if isinstance(value, (pulumi.FileArchive, pulumi.FileAsset)):
        return {SIG_KEY: ARCHIVE_SIG if isinstance(value, pulumi.Archive) else ASSET_SIG, "path": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {SIG_KEY: ASSET_SIG, "text": value.text}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
