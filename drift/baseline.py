"""The baseline: per feature, bin edges with the reference proportions, and a sample for the KS test; which outputs
of the model are watched, and how (class shares or values); and the payload kind it was built from (`tensor`, v2
inference bodies, or `openai`, an LLM's OpenAI-compatible bodies), so a job never compares one kind's features
with the other's (a baseline without it predates the LLM path and is `tensor`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .capture import OUTPUT_PREFIX, output_feature
from .llm import SHARE_FEATURES
from .stats import ks_2samp, proportions, psi, quantile_edges, value_edges

BASELINE_VERSION = 1
KS_SAMPLE_SIZE = 2000
PAYLOAD_KINDS = ("tensor", "openai")
DEFAULT_PAYLOAD = "tensor"


class BaselineError(ValueError):
    pass


def payload_kind(baseline: dict) -> str:
    return baseline.get("payload", DEFAULT_PAYLOAD)


def build_baseline(rows: list[dict[str, float]], bins: int = 10, seed: int = 0,
                   outputs: dict[str, str] | None = None, classes: dict[str, int] | None = None,
                   payload: str = DEFAULT_PAYLOAD) -> dict:
    """Bins and a KS sample per feature. Input and value features get quantile bins; a class output (`outputs`
    name -> "classes", with its class count in `classes`) gets one bin per class, so its PSI compares class shares.

    An `openai` baseline bins its 0-or-1 features (finish reasons, errors) at 0.5, gives a feature of few distinct
    values a bin per value (`value_edges`), and marks every feature optional: LLM bodies carry optional parts (usage
    only on some streams, no answer in an error), so a window may lack a feature without anything being wrong with
    the others, and the job compares what it has rather than publish nothing."""
    if payload not in PAYLOAD_KINDS:
        raise BaselineError(f"payload kind {payload!r} is not one of {', '.join(PAYLOAD_KINDS)}")
    requests = [row for row in rows if not any(name.startswith(OUTPUT_PREFIX) for name in row)]
    if len(requests) < bins * 5:
        raise BaselineError(f"{len(requests)} reference requests are too few for {bins} bins (need {bins * 5}+)")
    outputs, classes = outputs or {}, classes or {}
    names = sorted({name for row in rows for name in row})
    features = {}
    rng = random.Random(seed)
    for name in names:
        values = [row[name] for row in rows if name in row]
        output = next((o for o, kind in outputs.items() if output_feature(o, kind) == name), None)
        kind = outputs.get(output, "values") if output else "values"
        if kind == "classes":
            count = classes.get(output or "", 0)
            if count < 2:
                raise BaselineError(f"output {output}: give its number of classes (at least 2)")
            edges = [k + 0.5 for k in range(count - 1)]
        elif payload == "openai" and name in SHARE_FEATURES:
            kind, edges = "share", [0.5]
        elif payload == "openai":
            edges = value_edges(values, bins)
        else:
            edges = quantile_edges(values, bins)
        sample = values if len(values) <= KS_SAMPLE_SIZE else rng.sample(values, KS_SAMPLE_SIZE)
        features[name] = {"edges": edges, "proportions": proportions(values, edges), "sample": sample, "kind": kind}
        if payload == "openai":
            features[name]["optional"] = True
    baseline = {"version": BASELINE_VERSION, "payload": payload, "reference_count": len(requests),
                "features": features}
    if outputs:
        baseline["outputs"] = dict(sorted(outputs.items()))
    return baseline


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    count: int

    @property
    def is_prediction(self) -> bool:
        return self.feature.startswith(OUTPUT_PREFIX)


def compare(baseline: dict, rows: list[dict[str, float]]) -> list[FeatureDrift]:
    """Drift per feature of the baseline; an optional feature the window lacks is left out (see `build_baseline`),
    any other missing feature is an error."""
    if baseline.get("version") != BASELINE_VERSION or not isinstance(baseline.get("features"), dict):
        raise BaselineError("not an mlserve drift baseline (version 1 with 'features')")
    if not rows:
        raise BaselineError("no captured requests in the window: nothing to compare (is data capture on?)")
    results = []
    for name, spec in sorted(baseline["features"].items()):
        values = [row[name] for row in rows if name in row]
        if not values and spec.get("optional"):
            continue
        if not values:
            raise BaselineError(f"feature {name} of the baseline is missing from every captured request")
        statistic, pvalue = ks_2samp(spec["sample"], values)
        results.append(FeatureDrift(name, psi(spec["proportions"], proportions(values, spec["edges"])), statistic,
                                    pvalue, len(values)))
    return results
