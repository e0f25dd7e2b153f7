"""Entry point for `pulumi preview` / `pulumi up` (Pulumi.yaml: `main: infra/`).

The project is installed into the stack's virtualenv (`pip install -e .`), so `components` and `infra` import as
packages here exactly as they do under the tests.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from infra.config import ConfigError, from_engine
from infra.program import declare

try:
    stack_config = from_engine({**get_config_env(), **CONFIG.get()}, pulumi.get_stack())
except ConfigError as error:
    # RunError ends the program with this message and no Python traceback.
    raise pulumi.RunError(error.render()) from None

for output_name, value in declare(stack_config, pulumi.get_stack()).items():
    pulumi.export(output_name, value)
