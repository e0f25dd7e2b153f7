"""What a stack costs before `pulumi up`: the offline plan priced from a checked-in, sourced table per region."""

from .estimate import declared_from_plan, estimate, region_of
from .model import Assumptions, Declared, Estimate, Line
from .table import PriceTable, PriceTableError, load_table

__all__ = ["Assumptions", "Declared", "Estimate", "Line", "PriceTable", "PriceTableError", "declared_from_plan",
           "estimate", "load_table", "region_of"]
