"""The baseline: per feature, quantile bin edges with the reference proportions, and a sample for the KS test."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .stats import ks_2samp, proportions, psi, quantile_edges

BASELINE_VERSION = 1
KS_SAMPLE_SIZE = 2000


class BaselineError(ValueError):
    pass


def build_baseline(rows: list[dict[str, float]], bins: int = 10, seed: int = 0) -> dict:
    if len(rows) < bins * 5:
        raise BaselineError(f"{len(rows)} reference requests are too few for {bins} bins (need {bins * 5}+)")
    names = sorted(rows[0])
    features = {}
    rng = random.Random(seed)
    for name in names:
        values = [row[name] for row in rows if name in row]
        edges = quantile_edges(values, bins)
        sample = values if len(values) <= KS_SAMPLE_SIZE else rng.sample(values, KS_SAMPLE_SIZE)
        features[name] = {"edges": edges, "proportions": proportions(values, edges), "sample": sample}
    return {"version": BASELINE_VERSION, "reference_count": len(rows), "features": features}


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    count: int


def compare(baseline: dict, rows: list[dict[str, float]]) -> list[FeatureDrift]:
    if baseline.get("version") != BASELINE_VERSION or not isinstance(baseline.get("features"), dict):
        raise BaselineError("not an mlserve drift baseline (version 1 with 'features')")
    if not rows:
        raise BaselineError("no captured requests in the window: nothing to compare (is data capture on?)")
    results = []
    for name, spec in sorted(baseline["features"].items()):
        values = [row[name] for row in rows if name in row]
        if not values:
            raise BaselineError(f"feature {name} of the baseline is missing from every captured request")
        statistic, pvalue = ks_2samp(spec["sample"], values)
        results.append(FeatureDrift(name, psi(spec["proportions"], proportions(values, spec["edges"])), statistic,
                                    pvalue, len(values)))
    return results
