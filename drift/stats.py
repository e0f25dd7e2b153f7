"""Population stability index and the two-sample Kolmogorov-Smirnov test."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

# Proportions of empty bins are floored so the log-ratio stays finite; the usual choice in PSI implementations.
EPSILON = 1e-4


def quantile_edges(values: Sequence[float], bins: int = 10) -> list[float]:
    """Inner bin edges at the baseline's quantiles: each bin holds about the same share of the reference data."""
    if not values:
        raise ValueError("cannot build bins from no values")
    ordered = sorted(values)
    edges = []
    for k in range(1, bins):
        position = k * (len(ordered) - 1) / bins
        low, high = math.floor(position), math.ceil(position)
        edges.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return sorted(set(edges))


def value_edges(values: Sequence[float], bins: int = 10) -> list[float]:
    """Quantile edges, except for a feature of at most `bins` distinct values (a setting such as max_tokens or
    temperature, a count such as messages): there each reference value gets a bin of its own, and so does each gap
    between and beyond them. Quantile edges would put a value the reference never had in with its neighbours (all
    requests at temperature 0.7 give one edge, 0.7, and 0.2 falls in its bin), so a change would not show."""
    distinct = sorted(set(values))
    if len(distinct) > bins:
        return quantile_edges(values, bins)
    edges = []
    for value in distinct:  # bins (.., v - t] and (v - t, v]: the second holds v alone (t is far below any step)
        edges += [value - max(abs(value), 1.0) * 1e-9, value]
    return edges


def proportions(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Share of values per bin; bins are (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    if not values:
        raise ValueError("cannot compute proportions of no values")
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_left(edges, value)] += 1
    return [c / len(values) for c in counts]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two binned distributions (same bins). Under 0.1: stable; over 0.2: shift."""
    if len(expected) != len(actual):
        raise ValueError(f"bin counts differ: {len(expected)} vs {len(actual)}")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def ks_2samp(first: Sequence[float], second: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic and its asymptotic p-value (Kolmogorov distribution, Stephens' correction)."""
    if not first or not second:
        raise ValueError("the KS test needs two non-empty samples")
    a, b = sorted(first), sorted(second)
    n, m = len(a), len(b)
    i = j = 0
    statistic = 0.0
    while i < n and j < m:
        value = min(a[i], b[j])
        while i < n and a[i] <= value:
            i += 1
        while j < m and b[j] <= value:
            j += 1
        statistic = max(statistic, abs(i / n - j / m))
    effective = math.sqrt(n * m / (n + m))
    return statistic, kolmogorov_survival((effective + 0.12 + 0.11 / effective) * statistic)


def kolmogorov_survival(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution."""
    if x <= 0:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2 * (-1) ** (k - 1) * math.exp(-2 * k * k * x * x)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))
