"""The profile `tailor bench engine` records where bf16 misses a target (the timed bench itself is not a test)."""

import torch

from tailor import engine_bench as bench


def test_top_ops_rank_ops_by_self_cpu_time_with_their_share():
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    ops = bench._top_ops(lambda: [a @ b for _ in range(5)] + [a + b, a * b, a.relu(), a.exp(), a.sum()])
    assert len(ops) == 5 and any(o["op"] in ("aten::mm", "aten::matmul") for o in ops)  # not its rank: timing
    assert [o["self_cpu_s"] for o in ops] == sorted((o["self_cpu_s"] for o in ops), reverse=True)
    assert 0 < sum(o["share"] for o in ops) <= 1 + 1e-9


def test_only_a_missed_target_is_profiled():
    profiles, fns = {}, {"fp32": lambda: torch.ones(8) * 2, "bf16": lambda: torch.ones(8) * 3}
    bench._profile_if_missed(profiles, "inference_b64", 3.6, fns)  # target 3.5 met: nothing recorded
    assert profiles == {}
    bench._profile_if_missed(profiles, "inference_b64", 0.2, fns)
    assert profiles["inference_b64"]["target"] == 3.5 and profiles["inference_b64"]["speedup"] == 0.2
    assert {"fp32", "bf16"} <= set(profiles["inference_b64"]) and profiles["inference_b64"]["bf16"][0]["op"].startswith(
        "aten::"
    )
