from tailor.engine.timing import interleaved


def test_interleaved_alternates_calls_and_reports_every_function():
    order = []
    result = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds, alternating
    assert set(result) == {"a", "b"}


def test_interleaved_reports_the_median_call():
    import time

    slow = iter([0.0, 0.05, 0.0, 0.0])  # warm-up call, then one slow outlier among three timed calls
    result = interleaved({"f": lambda: time.sleep(next(slow))}, repeats=3, warmup=1)
    assert result["f"] < 0.04  # the median ignores the outlier
