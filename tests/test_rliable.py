"""rliable's aggregates as the study tables use them (mjx_cikd.experiments.stats): the IQM, the
probability of improvement and performance profiles with their intervals, and which pairs a set
compares."""

import numpy as np
import pytest
import scipy.stats

from mjx_cikd.experiments import stats


def test_iqm_is_the_trimmed_mean_and_its_interval_holds_it():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    out = stats.iqm_ci({"a": x[:, None]}, reps=500)
    iqm, low, high = out["a"]
    assert iqm == pytest.approx(np.mean(np.sort(x)[2:6]))  # the middle half: 2, 3, 4, 5
    assert iqm == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    assert low <= iqm <= high and high - low > 0
    # reproducible, and numpy's global generator is left where it was
    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    assert stats.iqm_ci({"a": x[:, None]}, reps=500) == out
    assert np.random.random() == before


def test_probability_of_improvement_of_a_dominating_variant_is_near_one():
    rng = np.random.default_rng(0)
    low, high = rng.normal(0, 1, (10, 1)), rng.normal(10, 1, (10, 1))
    out = stats.improvement_ci({"up": (high, low), "down": (low, high), "same": (low, low)},
                               reps=500)
    assert out["up"][0] == pytest.approx(1.0) and out["up"][1] > 0.9
    assert out["down"][0] == pytest.approx(0.0)
    assert out["same"][0] == pytest.approx(0.5)
    # against the definition: the share of pairs (x, y) with x > y
    x, y = np.array([[1.0], [3.0], [5.0]]), np.array([[2.0], [4.0]])
    p = stats.improvement_ci({"xy": (x, y)}, reps=200)["xy"][0]
    assert p == pytest.approx(np.mean(x[:, None, 0] > y[None, :, 0]))


def test_performance_profile_is_the_share_of_seeds_above_tau():
    scores = {"a": np.array([[1.0], [2.0], [3.0], [4.0]]), "b": np.array([[10.0], [10.0]])}
    out = stats.performance_profile(scores, [0.0, 2.5, 5.0], reps=300)
    np.testing.assert_allclose(out["a"].mean, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(out["b"].mean, [1.0, 1.0, 1.0])
    assert np.all(out["a"].low <= out["a"].mean) and np.all(out["a"].mean <= out["a"].high)
    assert out["a"].high[1] - out["a"].low[1] > 0  # four seeds: the middle is uncertain
    again = stats.performance_profile(scores, [0.0, 2.5, 5.0], reps=300)["a"]
    np.testing.assert_array_equal(again.low, out["a"].low)  # reproducible: rliable seeded


def test_improvement_pairs_compare_cikd_with_each_baseline_or_with_the_first_variant():
    s = {(t, v): np.arange(3.0) for t in ("A", "B") for v in ("sac", "ens", "cikd")}
    pairs = stats.improvement_pairs(["A", "B"], s, {"sac": True, "ens": True, "cikd": False})
    assert set(pairs) == {(t, "cikd", y) for t in ("A", "B", "all tasks") for y in ("sac", "ens")}
    assert pairs["all tasks", "cikd", "sac"][0].shape == (3, 2)
    only = stats.improvement_pairs(["A"], s, {"cikd": False, "ens": False})
    assert set(only) == {("A", "ens", "cikd")}
    # a set's own questions name their pairs; one whose variants did not run is left out
    named = stats.improvement_pairs(["A"], s, {"sac": True, "ens": True, "cikd": False},
                                    [("ens", "sac"), ("cikd", "ens"), ("cikd", "gone")])
    assert list(named) == [("A", "ens", "sac"), ("A", "cikd", "ens")]


def test_the_studys_questions_compare_each_variant_with_its_references():
    from mjx_cikd.experiments.sets import SETS

    pairs = SETS["study"].comparisons
    assert len(pairs) == len(set(pairs)) == 17
    for x in ("SAC-CIKD (I=500)", "SAC-CIKD (I=1500)", "SAC-CIKD (I=4000)"):
        assert (x, "Vanilla-SAC") in pairs and (x, "Ensemble-SAC") in pairs
    # the rule and the teacher against argmax at the same interval; the handover against a
    # fresh Adam and against the learning rate moved without distilling
    for pair in [("SAC-CIKD (confident election)", "SAC-CIKD (I=1500)"),
                 ("SAC-CIKD (random teacher)", "SAC-CIKD (I=1500)"),
                 ("SAC-CIKD (lr 3e-4, handover at 1e-3)", "SAC-CIKD (lr 3e-4, fresh Adam at 1e-3)"),
                 ("SAC-CIKD (lr 3e-4, handover at 1e-3)",
                  "Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)"),
                 ("Ensemble-SAC (lr 3e-4, 1e-3 after warm-up)", "Ensemble-SAC (lr 3e-4)")]:
        assert pair in pairs, pair
    # never a variant at the authors' rates against one at the shipped rates
    assert not [p for p in pairs if ("lr 3e-4" in p[0]) != ("lr 3e-4" in p[1])]


# --------------------------------------------------------------------------------------
