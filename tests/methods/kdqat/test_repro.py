import pytest

from tailor.methods.kdqat.repro import PROFILES, Results, run, table


def test_table_mean_std_over_seeds_and_average():
    r = Results()
    for seed, (a, b) in enumerate([(0.70, 0.80), (0.74, 0.90)]):
        r.add("Map", "t1", seed, a)
        r.add("Map", "t2", seed, b)
    r.add("Output", "t1", 0, 0.5)
    md = table(r, ("t1", "t2"))
    assert "| Map | 72.00 ± 2.00 (n=2) | 85.00 ± 5.00 (n=2) | 78.50 |" in md
    assert "| Output | 50.00 ± 0.00 (n=1) | — | — |" in md


def test_profiles_cover_the_issue_minimum():
    for profile in (PROFILES["quick"], PROFILES["full"]):  # `paper` holds GLUE's two single-sentence tasks
        assert len(profile.seeds) >= 3 and len(profile.tasks) >= 3
        presets = {d["preset"] for _, d in profile.methods}
        assert {"ternarybert", "map", "output", "sm1"} <= presets
    assert len({d.get("beta") for _, d in PROFILES["full"].methods if d["preset"] == "sm1"}) >= 5


def test_unknown_profile_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="quick, full"):
        run("medium", tmp_path)


def test_attention_table_averages_over_tasks():
    from tailor.methods.kdqat.repro import attention_table

    values = {
        "Map": {
            "a": {"map_kl": 0.2, "cover_length_ratio": 0.3, "ranking_loss": 10.0},
            "b": {"map_kl": 0.4, "cover_length_ratio": 0.5, "ranking_loss": 20.0},
        }
    }
    assert "| Map | 0.3000 | 0.4000 | 15.000 | 2 |" in attention_table(values)


def test_paired_table_interval_verdict_and_counts():
    from tailor.methods.kdqat.repro import FP_ROW, paired_table

    r = Results()
    for seed, (base, other) in enumerate([(0.5, 0.6), (0.7, 0.7), (0.8, 0.6)]):
        r.add("TernaryBERT (score MSE)", "t", seed, base)
        r.add("Map", "t", seed, other)
        r.add(FP_ROW, "t", seed, 0.9)
    md = paired_table(r)
    # d = (+0.1, 0, -0.2): mean -0.0333, sd 0.152753, t_{0.975,2} 4.302653 · 0.152753/√3 = 0.379454
    assert "| Map | t | -3.33 | [-41.28, +34.61] | inconclusive (n=3) | 1/1/1 |" in md and FP_ROW not in md
    assert "| Map | all tasks | -3.33 |" in md


def test_the_accuracy_plot_zooms_to_the_bars_so_a_point_shows(tmp_path, monkeypatch):
    from tailor.methods.kdqat import repro

    limits = {}
    monkeypatch.setattr(repro, "finish", lambda fig, ax, path, **kw: limits.setdefault("y", ax.get_ylim()))
    results = Results()
    for seed, (a, b) in enumerate([(0.95, 0.94), (0.96, 0.95)]):
        results.add("teacher", "t", seed, a)
        results.add("student", "t", seed, b)
    repro._plot(results, ("t",), tmp_path / "a.png")
    assert limits["y"][0] == pytest.approx(94.5 - 0.5 - 5)  # the lowest bar's mean - std, less 5 points
