"""mlserve's CrossGuard policy pack. Rules live in `policies.rules`; `__main__` only serves them to the CLI."""
