"""Entry point for `pulumi preview` / `pulumi up` (Pulumi.yaml: `main: infra/`).

The project is installed into the stack's virtualenv (`pip install -e .`), so `components` and `infra` import as
packages here exactly as they do under the tests.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

from infra.config import ConfigError, from_engine
from infra.program import SECRET_SAFE_KEYS, declare

config = {**get_config_env(), **CONFIG.get()}
try:
    stack_config = from_engine(config, pulumi.get_stack())
except ConfigError as error:
    # RunError ends the program with this message and no Python traceback.
    raise pulumi.RunError(error.render()) from None

# A key stored with `pulumi config set --secret` is decrypted for the program; say so where the resources it
# configures would keep it in plaintext state.
for key in sorted(k for k in config if is_config_secret(k) or k in get_config_secret_keys_env()):
    if key not in SECRET_SAFE_KEYS:
        pulumi.log.warn(f"{key} is stored as a secret, but the resources it configures keep their inputs in "
                        f"plaintext state; only {', '.join(sorted(SECRET_SAFE_KEYS))} stay encrypted there")

for output_name, value in declare(stack_config, pulumi.get_stack()).items():
    pulumi.export(output_name, value)
