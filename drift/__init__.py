"""Drift monitoring: compare recent captured inputs with a baseline from reference data.

Pure Python (no numpy) so the same code runs in the scheduled Lambda function without layers, in `python -m drift`,
and in the tests. It imports nothing from infra/ or components/.
"""

from pathlib import Path

BUNDLE = Path(__file__).parent
"""The folder the scheduled job's Lambda bundle is made from (this package, as it is)."""
