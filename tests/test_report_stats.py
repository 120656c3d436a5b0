"""Paired statistics against hand-computed values."""

import math

import pytest

from tailor.report.stats import CONTRADICTED, HOLDS, INCONCLUSIVE, fmt_paired, paired, paired_by_key, paired_runs


def test_paired_t_interval_by_hand():
    # d = (0.02, 0.04, 0.06): mean 0.04, sd (ddof 1) 0.02, se 0.02/√3 = 0.011547;
    # t_{0.975, 2} = 4.302653 -> half width 0.049683 -> [-0.009683, 0.089683]
    p = paired([0.52, 0.74, 0.86], [0.50, 0.70, 0.80])
    assert p.n == 3 and p.mean == pytest.approx(0.04)
    assert p.low == pytest.approx(-0.0096826, abs=1e-6) and p.high == pytest.approx(0.0896826, abs=1e-6)
    assert p.verdict == INCONCLUSIVE


def test_verdicts_follow_the_interval():
    # d = (0.03, 0.04, 0.05, 0.04): mean 0.04, sd 0.0081650, se 0.0040825, t_{0.975,3} = 3.182446
    # -> half 0.012992 -> [0.027008, 0.052992]: above 0
    up = paired([0.53, 0.54, 0.55, 0.54], [0.5] * 4)
    assert up.verdict == HOLDS and up.low == pytest.approx(0.027008, abs=1e-6)
    assert paired([0.5] * 4, [0.53, 0.54, 0.55, 0.54]).verdict == CONTRADICTED
    # lower is better (perplexity): 10 -> 9 is an improvement
    assert paired([9.0, 9.1, 8.9], [10.0, 10.0, 10.0], higher_is_better=False).verdict == HOLDS


def test_one_pair_is_inconclusive_and_keys_pair_up():
    one = paired([0.9], [0.1])
    assert one.verdict == INCONCLUSIVE and math.isnan(one.low) and one.mean == pytest.approx(0.8)
    p = paired_by_key({0: 0.6, 1: 0.7, 2: 0.9}, {1: 0.5, 2: 0.6, 3: 0.0})  # seeds 1 and 2: d = 0.2, 0.3
    assert p.n == 2 and p.mean == pytest.approx(0.25)
    assert fmt_paired(p) == ["+25.00", f"[{p.low * 100:+.2f}, {p.high * 100:+.2f}]", "inconclusive (n=2)"]
    with pytest.raises(ValueError):
        paired([1, 2], [1])


def test_paired_runs_pair_last_stages_by_seed():
    def run(name, accs):
        return {
            "recipe": name,
            "seeds": {
                str(s): {"01-a": {"test": {"accuracy": 0.0}}, "02-b": {"test": {"accuracy": a}}}
                for s, a in enumerate(accs)
            },
        }

    rows = paired_runs([run("ft", [0.5, 0.6, 0.7]), run("sd", [0.53, 0.64, 0.75])])
    # d = (0.03, 0.04, 0.05): mean +4.00, sd 0.01, t_{0.975,2} 4.302653 · 0.01/√3 = 0.024841
    assert rows == [["sd", "ft", "+4.00", "[+1.52, +6.48]", "holds (n=3)"]]


def test_tailor_report_shows_the_paired_interval(tmp_path, capsys):
    import json

    from tailor.cli import main

    for name, accs in (("ft", [0.5, 0.6, 0.7]), ("sd", [0.53, 0.64, 0.75])):
        seeds = {str(s): {"01-finetune": {"test": {"accuracy": a}}} for s, a in enumerate(accs)}
        summary = {"01-finetune": {"test/accuracy": {"mean": sum(accs) / 3, "std": 0.1, "n": 3}}}
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"recipe": name, "seeds": seeds, "summary": summary}))
    assert main(["report", str(tmp_path / "ft"), str(tmp_path / "sd"), "--out", str(tmp_path / "rep")]) == 0
    assert "| sd | ft | +4.00 | [+1.52, +6.48] | holds (n=3) |" in (tmp_path / "rep" / "table.md").read_text()
