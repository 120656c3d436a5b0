"""`tailor bench serve` end to end on tiny-bert with tiny bounds: the bench.json contract, the
answers check against `tailor predict`, and a counted FLOP bound below 1."""

import json

import pytest

from tailor.cli import main
from tailor.serve import bench

pytestmark = pytest.mark.slow

KEYS = {
    "mixed64_over_base_throughput",
    "mixed64_over_single_throughput",
    "flop_bound_over_base",
    "batched_over_unbatched_throughput",
}


def test_bench_serve_writes_the_contract_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ADAPTERS", 8)  # the command line's own path, with tiny bounds
    full_run = bench.run
    monkeypatch.setattr(bench, "run", lambda out: full_run(out, rounds=1, requests=64, seconds=1.0, model="tiny-bert"))
    assert main(["bench", "serve", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result) == KEYS | {"where_time_goes", "details"} and all(result[k] > 0 for k in KEYS)
    for case in ("mixed64", "mixed64_unbatched"):
        shares = result["where_time_goes"][case]
        assert 0 < shares["forward_share"] < 1 and shares["padded_over_real_tokens"] >= 1
    assert result["where_time_goes"]["mixed64_unbatched"]["rows_per_batch"] == 1
    assert set(result["where_time_goes"]["model_only"]["seconds"]) == {"bucketed", "one_padded_batch", "row_by_row"}
    details = result["details"]
    exact, served = details["answers"]["fp32"], details["answers"]["served"]
    assert exact["precision"] == "fp32" and exact["labels_equal"] and exact["max_abs_prob_diff"] < 1e-5
    assert served["precision"] in ("fp32", "bf16") and 0 <= served["label_agreement"] <= 1
    assert all(details["targets"][k] for k in details["targets"] if k.startswith("answers"))
    assert 0 < details["flops"]["flop_bound_over_base"] < 1
    assert {f"{case}@{c}" for case in bench.CASES for c in bench.CONCURRENCY} == set(details["rows"])
    assert all(row["errors"] == 0 and row["requests"] > 0 for row in details["rows"].values())
    assert "| mixed64_unbatched | 64 |" in (tmp_path / "bench.md").read_text()
