"""Interleaved timing: the rounds, the chained carries, and ratios taken within rounds."""

from mjx_cikd.bench import timing


def test_interleaved_timing_chains_each_carry_and_rotates_the_order_by_round():
    calls = []

    def counter(name):
        def fn(x):
            calls.append((name, x))
            return (x + 1,)
        return timing.Timed(fn, (0,))

    times = timing.time_interleaved({"a": counter("a"), "b": counter("b")}, repeats=3,
                                    min_time=0.0)
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    # two warm-up calls each, then one call of each per round, the order rotated by round;
    # each measurement's carry runs on from its own last call
    assert calls == [("a", 0), ("a", 1), ("b", 0), ("b", 1),
                     ("a", 2), ("b", 2), ("b", 3), ("a", 3), ("a", 4), ("b", 4)]


def test_ratios_are_taken_within_rounds_not_between_medians():
    # round 3 is slow for both measurements: the per-round ratio sees 1, 1, 1
    a, b = [1.0, 1.2, 5.0], [1.0, 1.2, 5.0]
    assert timing.per_round(lambda x, y: x / y, a, b) == 1.0
    a, b = [1.0, 10.0, 2.0], [1.0, 10.0, 1.0]  # ratio of medians would say 2
    assert timing.per_round(lambda x, y: x / y, a, b) == 1.0
