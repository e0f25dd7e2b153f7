"""The one bake loop both backends' `rollout promote` use: watch the guards for a while, and look once more at
the end, so an alert that fires after the last poll still stops the promotion."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console


def bake(firing: Callable[[], list[str]], seconds: float, *, poll_seconds: float, sleep: Callable[[float], None],
         out: Console, guards: str = "guard alarms") -> list[str]:
    """Poll `firing` until `seconds` have passed; the names firing as soon as any are, else [] after a final look."""
    waited = 0.0
    with out.status(f"baking {seconds:.0f} s") as status:
        while True:
            alarms = firing()
            if alarms or waited >= seconds:
                return alarms
            status.update(f"baking: {waited:.0f}/{seconds:.0f} s, {guards} OK")
            step = min(poll_seconds, seconds - waited)
            sleep(step)
            waited += step
