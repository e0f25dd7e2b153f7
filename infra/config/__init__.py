"""Stack configuration: YAML in, validated models out, and nothing else."""

from .errors import ConfigError, ConfigIssue
from .loader import available_stacks, from_engine, load_file, load_named, load_stack, validate
from .models import StackConfig

__all__ = ["ConfigError", "ConfigIssue", "StackConfig", "available_stacks", "from_engine", "load_file", "load_named",
           "load_stack", "validate"]
