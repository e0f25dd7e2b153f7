"""The offline plan: what a stack declares, computed under Pulumi's mock engine with no cloud account."""

from .engine import run
from .model import Plan, Resource


def plan_stack(cfg, stack: str, preview: bool = False) -> Plan:
    """Run the real program for a validated config."""
    from infra.config.loader import encrypted_of
    from infra.program import declare

    return run(lambda: declare(cfg, stack), stack=stack, region=cfg.region, account_id=cfg.account_id,
               preview=preview, stand_ins=[s.stand_in for s in encrypted_of(cfg) if len(s.stand_in) >= MIN_TRACED])


# A stand-in this long is found only where the encrypted value flowed (a shorter one, such as three digits, could
# match unrelated text, and is left as the stand-in it is: still no plaintext).
MIN_TRACED = 8


__all__ = ["Plan", "Resource", "plan_stack", "run"]
