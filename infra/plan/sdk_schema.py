"""What the installed provider SDKs say a resource type accepts, read from their generated input types.

The offline plan must hold exactly what the engine would send, so it takes two facts from the SDKs instead of a hand
list: which input a provider auto-names, and which input keys (top-level and nested) a resource type has at all. The
generated `<Resource>Args` input types carry both: their properties under the engine's camelCase names, with the
nested input types as annotations.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import keyword
import typing
from functools import cache
from typing import Any

import pulumi
from pulumi import _types as pulumi_types
from pulumi.runtime import rpc

SDK_PACKAGES = {"aws": "pulumi_aws", "aws-native": "pulumi_aws_native", "kubernetes": "pulumi_kubernetes",
                "random": "pulumi_random"}


def _module_path(package: str, token: str) -> str:
    """`aws:sagemaker/endpointConfiguration:X` -> `pulumi_aws.sagemaker`; `kubernetes:networking.k8s.io/v1:X` ->
    `pulumi_kubernetes.networking.v1`; `aws:index/x:X` -> `pulumi_aws`."""
    module = token.split(":")[1]
    if package == "kubernetes":
        group, version = module.split("/")
        return f"{SDK_PACKAGES[package]}.{group.split('.')[0]}.{version}"
    first = module.split("/")[0]
    if first == "index":
        return SDK_PACKAGES[package]
    # Python keywords get a trailing underscore (`aws:lambda/...` lives in `pulumi_aws.lambda_`).
    return f"{SDK_PACKAGES[package]}.{first}_" if keyword.iskeyword(first) else f"{SDK_PACKAGES[package]}.{first}"


@cache
def resource_class(token: str) -> type[pulumi.CustomResource] | None:
    """The SDK class registered under `token`, or None for a type no installed SDK generates (a CRD's kind)."""
    package = token.split(":")[0]
    if token.startswith("pulumi:providers:"):
        package = token.split(":")[2]
        try:
            return importlib.import_module(SDK_PACKAGES[package]).Provider
        except (KeyError, ImportError, AttributeError):
            return None
    if package not in SDK_PACKAGES:
        return None
    try:
        module = importlib.import_module(_module_path(package, token))
    except ImportError:
        return None
    cls = getattr(module, token.split(":")[2], None)
    return cls if isinstance(cls, type) else None


@cache
def args_type(token: str) -> type | None:
    """The resource's generated `<Resource>Args` input type."""
    cls = resource_class(token)
    if cls is None:
        return None
    module = importlib.import_module(cls.__module__)
    # `<Resource>InitArgs` where a nested input type already took `<Resource>Args` (s3.BucketVersioning).
    for candidate in (f"{cls.__name__}InitArgs", f"{cls.__name__}Args"):
        args = getattr(module, candidate, None)
        if args is not None and pulumi_types.is_input_type(args) and \
                set(pulumi_types.input_type_py_to_pulumi_names(args)) == _init_parameters(cls):
            return args
    raise LookupError(f"{token}: no input type in {module.__name__} matches the resource's parameters")


def _init_parameters(cls: type) -> set[str]:
    """The inputs a resource class accepts: the parameters of its `_internal_init`."""
    plumbing = {"__self__", "resource_name", "opts", "__props__", "alias_opts"}
    return {p for p in inspect.signature(cls._internal_init).parameters if p not in plumbing}  # type: ignore[attr-defined]


def input_properties(input_type: type) -> dict[str, Any]:
    """Engine (camelCase) property name -> annotated type, for any generated input type."""
    return pulumi_types.input_type_types(input_type)


@cache
def _required(input_type: type) -> frozenset[str]:
    """Engine names of the properties the input type's constructor requires (no default)."""
    names = pulumi_types.input_type_py_to_pulumi_names(input_type)
    params = inspect.signature(input_type.__init__).parameters
    return frozenset(names[p.name] for p in params.values()
                     if p.name in names and p.default is inspect.Parameter.empty)


@cache
def autoname_property(token: str) -> str | None:
    """The input the provider fills with `<logical name>-<random suffix>` when the program leaves it unset.

    The bridged providers (pulumi-aws, pulumi-random) auto-name an optional `name` input by default and a few others
    by override; every such override comes with a `<property>Prefix` sibling (`bucket`/`bucketPrefix`). A property
    the SDK requires is never auto-named: the program must set it. pulumi-kubernetes names objects in
    `metadata.name`, which `autoname_metadata` covers.
    """
    args = args_type(token)
    if args is None or token.startswith("pulumi:providers:"):
        return None
    props = input_properties(args)
    if "metadata" in props and token.startswith("kubernetes:"):
        return None
    required = _required(args)
    if "name" in props and "name" not in required:
        return "name"
    candidates = [p for p in props if f"{p}Prefix" in props and p not in required]
    return candidates[0] if len(candidates) == 1 else None


def autoname_metadata(token: str) -> bool:
    """A Kubernetes object (built-in or custom) the provider names in `metadata.name` when the program does not."""
    if not token.startswith("kubernetes:") or token.startswith("pulumi:providers:"):
        return False
    args = args_type(token)
    return args is None or "metadata" in input_properties(args)


# ---- structural check of recorded inputs against the SDK's input types -------------------------------------------

SIG_KEY, SECRET_SIG = rpc._special_sig_key, rpc._special_secret_sig  # the wire format's markers, from the SDK


def _input_types_in(annotation: Any) -> tuple[list[type], Any]:
    """The generated input types an annotation admits, and the element annotation when it is a sequence or map."""
    found: list[type] = []
    element: Any = None
    stack = [annotation]
    while stack:
        tp = stack.pop()
        if isinstance(tp, type) and pulumi_types.is_input_type(tp):
            found.append(tp)
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (collections.abc.Sequence, list, tuple) and args:
            element = ("seq", args[0])
        elif origin in (collections.abc.Mapping, dict) and len(args) == 2:
            element = ("map", args[1])
        elif origin is not None:
            stack.extend(args)
    return found, element


def unknown_keys(value: Any, annotation: Any, path: str) -> list[str]:
    """Paths of keys in `value` that the annotated SDK input type does not declare."""
    if isinstance(value, dict) and (SIG_KEY in value):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unknown_keys(value.get("value"), annotation, path)
        return []  # an asset or archive
    input_types, element = _input_types_in(annotation)
    if isinstance(value, dict) and input_types:
        props: dict[str, Any] = {}
        for input_type in input_types:
            props.update(input_properties(input_type))
        problems = [f"{path}.{key}" for key in value if key not in props]
        for key, item in value.items():
            if key in props:
                problems += unknown_keys(item, props[key], f"{path}.{key}")
        return problems
    if isinstance(value, list) and element and element[0] == "seq":
        return [p for i, item in enumerate(value) for p in unknown_keys(item, element[1], f"{path}[{i}]")]
    if isinstance(value, dict) and element and element[0] == "map":
        return [p for key, item in value.items() for p in unknown_keys(item, element[1], f"{path}.{key}")]
    return []


def resource_unknown_keys(token: str, inputs: dict[str, Any]) -> list[str]:
    """Input keys of a recorded resource that its SDK input type lacks (top-level and nested)."""
    args = args_type(token)
    if args is None:
        raise LookupError(f"no installed SDK generates {token}")
    props = input_properties(args)
    problems = [key for key in inputs if key not in props]
    for key, value in inputs.items():
        if key in props:
            problems += unknown_keys(value, props[key], key)
    return problems
