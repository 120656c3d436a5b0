from tailor.engine.timing import interleaved


def test_interleaved_alternates_calls_and_reports_every_function():
    order = []
    result = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] * 4  # one warm-up round, then three timed rounds, alternating
    assert set(result) == {"a", "b"} and all(t >= 0 for t in result.values())
