"""infra.ops.profile_llm against the real server: a short sweep gives finite, positive TTFT and ITL, tokens/s, and a
recommendation with the config lines to paste."""

from __future__ import annotations

import asyncio
import math

from infra.ops.profile_llm import LlmTarget, config_lines, recommend, sweep


def test_a_short_sweep_measures_ttft_itl_and_tokens_per_second(llm_server):
    target = LlmTarget(llm_server.base_url, llm_server.served_model_name)
    steps = asyncio.run(sweep(target, [1, 2], seconds=2.0, max_requests=6, prompt_tokens=16, max_tokens=16,
                              warmup_seconds=0.5))
    assert [s.concurrency for s in steps] == [1, 2]
    for step in steps:
        assert step.errors == 0, step.error_samples
        assert 1 <= step.requests <= 6
        assert step.output_tokens == 16 * step.requests  # usage: every request generated max_tokens
        assert step.prompt_tokens >= 16 * step.requests
        assert step.tokens_per_second > 0 and step.throughput > 0
        assert len(step.ttft_ms) == step.requests and len(step.itl_ms) >= step.requests
        # vLLM streams a chunk per token (a special token decodes to no content, so at most one each).
        assert step.content_chunks == len(step.itl_ms) + step.requests
        assert step.summary()["mean_tokens_per_chunk"] >= 1
        for p in (50, 95, 99):
            assert 0 < step.ttft(p) < math.inf and 0 < step.itl(p) < math.inf
        assert step.ttft(50) <= step.ttft(95) <= step.ttft(99)
        assert step.seconds < 2.0 + 60  # bounded: no request starts after 2 s

    loose = recommend(steps, ttft_p99_ms=60_000, itl_p99_ms=60_000)
    assert loose["concurrency"] == 2 and loose["tokens_per_second"] > 0
    assert config_lines(loose) == ["autoscaling.target_concurrency: 2",
                                   f"llm.tokens_per_second_at_slo: {loose['tokens_per_second']:.1f}"]
    impossible = recommend(steps, ttft_p99_ms=0.001, itl_p99_ms=0.001)
    assert impossible["concurrency"] is None and config_lines(impossible) == []
