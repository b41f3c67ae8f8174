"""Noise in the election and its audit (issue 17): standard errors beside every statistic, the
audit's own episode count, decided phases and normalised regret, the `confident` rule, an audit
that never changes a run, and the authors' optimiser handover with its learning-rate control."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_chunks, stepwise, tiny

from mjx_cikd.agent import sac as sac_lib
from mjx_cikd.cikd import election
from mjx_cikd.config import ConfigError
from mjx_cikd.host import records
from mjx_cikd.host.run import train
from mjx_cikd.host.run_dir import read_metrics
from mjx_cikd.loop import evaluation, faults
from mjx_cikd.loop import trainer as trainer_lib


def test_standard_errors_are_the_sample_std_over_root_n():
    returns = np.random.default_rng(0).normal(size=(3, 40)) * [[1.0], [5.0], [20.0]]
    s = evaluation.score(jnp.asarray(returns))
    np.testing.assert_allclose(s.mean, returns.mean(1), rtol=1e-5)
    np.testing.assert_allclose(s.se, returns.std(1, ddof=1) / np.sqrt(40), rtol=1e-4)
    assert np.isnan(evaluation.score(jnp.ones((3, 1))).se).all()  # one episode: no noise known
    ring = election.init_ring(3, 4)
    for value, member in [(1.0, 0), (3.0, 0), (8.0, 0), (5.0, 1), (9.0, 0), (20.0, 0)]:
        ring = election.record(ring, jnp.array([member]), jnp.array([value]), jnp.array([True]),
                               jnp.array([0]))
    se = election.recent_se(ring)
    np.testing.assert_allclose(se[0], np.std([3.0, 8.0, 9.0, 20.0], ddof=1) / 2, rtol=1e-5)
    assert np.isnan(se[1]) and np.isnan(se[2])  # one return, none


def test_the_confident_rule_wants_a_lead_beyond_the_noise_of_the_difference():
    scores, se = jnp.array([10.0, 7.0, jnp.nan]), jnp.array([1.0, 1.0, 0.0])
    assert election.leads(scores, se, 0, z=2.0)  # 3 > 2 * sqrt(2) = 2.83
    assert not election.leads(scores, se, 0, z=2.2)  # 3 < 3.11
    assert election.leads(jnp.array([4.0, jnp.nan]), jnp.array([1.0, 1.0]), 0, z=9.0)  # alone
    assert not election.leads(scores, jnp.array([jnp.nan, 1.0, 1.0]), 0, z=0.1)
    assert int(election.runner_up(scores, 0)) == 1


def test_a_phase_is_decided_when_the_audited_best_leads_beyond_twice_its_noise():
    assert election.decided([10.0, 5.0, 1.0], [1.0, 1.0, 1.0])  # 5 > 2.83
    assert not election.decided([10.0, 8.0, 1.0], [1.0, 1.0, 1.0])  # 2 < 2.83
    assert not election.decided([10.0, np.nan, np.nan], [1.0, 1.0, 1.0])
    assert election.regret_normalized([10.0, 6.0, 2.0], 4.0) == 0.5
    assert np.isnan(election.regret_normalized([3.0, 3.0], 0.0))


def test_the_end_summary_scores_decided_phases_apart():
    def row(hit, decided, regret, spread):
        return dict(event="distill", hit=hit, regret=regret, decided=decided,
                    regret_normalized=regret / spread)

    summary = records.election_summary([row(True, True, 0.0, 10.0), row(False, True, 5.0, 10.0),
                                        row(False, False, 1.0, 2.0), row(True, True, 0.0, 4.0)])
    assert summary["election_phases"] == 4 and summary["election_decided_phases"] == 3
    assert summary["election_hit_rate"] == 0.5
    assert summary["election_hit_rate_decided"] == pytest.approx(2 / 3)
    assert summary["election_regret_normalized"] == pytest.approx((0 + 0.5 + 0.5 + 0) / 4)
    # an audited run whose phases never elected a teacher says so; an unaudited one has no fields
    declined = [dict(event="distill", ran=False, audit=[1.0, 2.0], audit_se=[0.1, 0.1])]
    end = records.end_summary(declined, num_seeds=1, audited=True)
    assert end["election_phases"] == end["election_decided_phases"] == 0
    assert end["election_hit_rate_decided"] is None and end["election_regret_normalized"] is None
    assert "election_phases" not in records.end_summary(declined, num_seeds=1)


CIKD = dict(env="ProbeTarget", algo="cikd", ensemble_size=3, distill_interval=128,
            distill_warmup=128, distill_steps=8, log_every=256)


def test_a_non_finite_audit_neither_flags_a_fault_nor_changes_the_run(monkeypatch):
    _, plain, plain_logs, _ = run_chunks(tiny(**CIKD), chunks=2)
    real = evaluation.make_score

    def broken(task, ensemble, episodes):  # the audit's scorer (its own count) returns NaN
        scorer = real(task, ensemble, episodes)
        if episodes != 7:
            return scorer
        return lambda *a, **k: evaluation.Score(*(jnp.full_like(x, jnp.nan)
                                                  for x in scorer(*a, **k)))

    monkeypatch.setattr(trainer_lib, "make_score", broken)
    _, audited, logs, _ = run_chunks(tiny(**CIKD, audit_election=True, audit_episodes=7),
                                     chunks=2)
    due = np.concatenate([log.phase.due for log in logs])
    assert due.sum() >= 4 and np.isnan(np.concatenate([log.phase.audit for log in logs])).all()
    for log in logs:  # no fault: every member's first bad iteration is NONE
        for found in log.faults:
            assert (np.asarray(found) == faults.NONE).all()
    for a, b in zip(jax.tree.leaves(plain.members), jax.tree.leaves(audited.members)):
        np.testing.assert_array_equal(a, b)


def test_a_nan_audit_under_rollback_runs_to_the_end_as_the_plain_run(tmp_path, monkeypatch):
    common = dict(CIKD, total_steps=512, checkpoint_every=256, on_nonfinite="rollback")
    train(tiny(**common), run_dir=tmp_path / "plain", quiet=True)
    real = evaluation.make_score
    monkeypatch.setattr(trainer_lib, "make_score", lambda task, ensemble, episodes: (
        real(task, ensemble, episodes) if episodes != 7 else
        (lambda *a, **k: evaluation.Score(jnp.full(3, jnp.nan), jnp.full(3, jnp.nan)))))
    train(tiny(**common, audit_election=True, audit_episodes=7), run_dir=tmp_path / "audited",
          quiet=True)
    plain, audited = (read_metrics(tmp_path / d, "eval") for d in ("plain", "audited"))
    assert [r["returns"] for r in plain] == [r["returns"] for r in audited] and len(plain) == 4
    assert not read_metrics(tmp_path / "audited", "rollback")


def test_the_confident_rule_skips_a_phase_whose_lead_is_noise_and_says_so(tmp_path):
    never = tiny(**CIKD, election_metric="train_returns", election_rule="confident",
                 election_z=1e9, learning_starts=64)
    logs = run_chunks(never, chunks=2).logs
    phase = jax.tree.map(lambda *x: np.concatenate(x), *[log.phase for log in logs])
    elected = phase.due & (phase.teacher >= 0)
    assert elected.sum() >= 2 and not phase.ran.any() and not phase.confident[elected].any()
    row = records.phase_record(never, jax.tree.map(lambda x: x[np.flatnonzero(elected)[0]],
                                                   phase), 0, 0)
    assert row["declined"] and not row["ran"] and np.isfinite(row["statistic_se"]).any()
    argmax_logs = run_chunks(tiny(**CIKD, election_metric="train_returns", learning_starts=64),
                             chunks=2).logs
    assert np.concatenate([log.phase.ran for log in argmax_logs]).sum() == elected.sum()


def test_the_shipped_rule_distils_on_cartpole_exactly_where_the_lead_beats_the_noise():
    """The default rule (`confident`, chosen by the study) on a real task, its statistic a
    10-episode evaluation: a phase distils exactly where the elected member leads the runner-up
    by more than z standard errors of the difference, and a declined one spends no step."""
    from mjx_cikd.config import Config

    config = tiny(**CIKD | dict(env="CartpoleSwingup", impl="jax", episode_length=100,
                                election_rule=Config.election_rule))
    assert config.election_rule == "confident" and config.election_metric == "eval"
    logs = run_chunks(config, chunks=3).logs
    phase = jax.tree.map(lambda *x: np.concatenate(x), *[log.phase for log in logs])
    due = np.flatnonzero(phase.due & (phase.teacher >= 0))
    assert len(due) >= 4 and phase.ran[due].any() and not phase.ran[due].all()  # both kinds
    for t in due:
        score, se, teacher = phase.statistic[t], phase.statistic_se[t], phase.teacher[t]
        runner_up = max((m for m in range(3) if m != teacher), key=lambda m: score[m])
        assert teacher == int(np.argmax(score))
        leads = score[teacher] - score[runner_up] > config.election_z * np.hypot(
            se[teacher], se[runner_up])
        assert bool(phase.ran[t]) == bool(phase.confident[t]) == leads
        assert phase.stats.steps[t] == (config.distill_steps if leads else 0)


STEP = dict(env="ProbeTarget", algo="cikd", ensemble_size=3, num_envs=8, log_every=8,
            learning_starts=8, distill_interval=24, distill_warmup=24, distill_steps=5,
            distill_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4)


def test_handover_gives_the_students_the_distillations_adam_and_leaves_the_teacher():
    _, states, logs = stepwise(tiny(**STEP, distill_optimizer="handover"), 5)
    _, fresh_states, _ = stepwise(tiny(**STEP), 5)
    post, log = states[3], logs[2]  # the phase ran at the end of iteration 3
    assert log.phase.ran[0]
    teacher = int(log.phase.teacher[0])
    (m_post,), (m_fresh,) = post.members, fresh_states[3].members  # one width group
    for name in ("actor_opt", "critic_opt"):
        lr = np.asarray(sac_lib.learning_rate(getattr(m_post, name)))
        count = np.asarray(getattr(m_post, name)[1].count)
        students = np.arange(3) != teacher
        np.testing.assert_allclose(lr[students], 1e-3)
        np.testing.assert_array_equal(count[students], 5)  # the distillation's 5 steps
        assert lr[teacher] == pytest.approx(3e-4)
        # the teacher's Adam is its own SAC Adam: the fresh run's, moments and count alike
        mine = jax.tree.leaves(getattr(m_post, name)[1].inner_state)
        fresh = jax.tree.leaves(getattr(m_fresh, name)[1].inner_state)
        assert len(mine) == len(fresh)
        for a, b in zip(mine, fresh):
            np.testing.assert_allclose(np.asarray(a)[teacher], np.asarray(b)[teacher],
                                       rtol=1e-4, atol=1e-6)  # two compiles: rounding
    # up to the phase, and in the phase's parameters, handover and fresh are the same run, bit
    # for bit: both build their Adam alike
    for i in range(4):
        for a, b in zip(jax.tree.leaves(states[i].members[0].actor),
                        jax.tree.leaves(fresh_states[i].members[0].actor)):
            np.testing.assert_array_equal(a, b)
    # ... and the next SAC update differs: the students now step at 1e-3
    after, fresh_after = states, fresh_states
    student = int(np.flatnonzero(np.arange(3) != teacher)[0])
    moved = np.abs(np.asarray(jax.tree.leaves(after[5].members[0].actor)[0])[student]
                   - np.asarray(jax.tree.leaves(fresh_after[5].members[0].actor)[0])[student])
    assert moved.max() > 1e-6


def test_every_run_keeps_its_learning_rate_in_its_adam_state():
    _, states, _ = stepwise(tiny(**STEP), 4)
    lr = np.asarray(sac_lib.learning_rate(states[-1].members[0].actor_opt))
    np.testing.assert_allclose(lr, 3e-4)


def test_lr_after_warmup_sets_every_members_lr_at_the_first_phase_point_and_nothing_else():
    config = tiny(**dict(STEP, algo="ensemble"), lr_after_warmup=1e-3)
    _, states, logs = stepwise(config, 4)
    _, plain, _ = stepwise(tiny(**dict(STEP, algo="ensemble")), 4)
    assert [bool(log.phase.due[0]) for log in logs] == [False, False, True, False]
    for i, state in enumerate(states):
        lr = np.asarray(sac_lib.learning_rate(state.members[0].actor_opt))
        np.testing.assert_allclose(lr, 1e-3 if i >= 3 else 3e-4)
    # bit for bit the same members and optimiser states up to the switch (which moves no
    # parameter): the control and its fixed-rate twin part only where the rate changes
    for i in range(3):
        for a, b in zip(jax.tree.leaves(states[i].members), jax.tree.leaves(plain[i].members)):
            np.testing.assert_array_equal(a, b)
    for part in ("actor", "critic", "target_critic", "log_alpha"):  # after it: all but the rate
        for a, b in zip(jax.tree.leaves(getattr(states[3].members[0], part)),
                        jax.tree.leaves(getattr(plain[3].members[0], part))):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("overrides, gist", [
    (dict(algo="cikd", ensemble_size=3, election_rule="confident",
          election_metric="reward_rate"), "needs --teacher best and a statistic"),
    (dict(algo="cikd", ensemble_size=3, election_rule="confident", teacher="random"),
     "needs --teacher best"),
    (dict(algo="cikd", ensemble_size=3, lr_after_warmup=1e-3), "--lr_after_warmup is the"),
    (dict(algo="ensemble", ensemble_size=3, audit_episodes=0), "--audit_episodes must be >= 1"),
])
def test_bad_noise_flags_are_one_line_errors(overrides, gist):
    with pytest.raises(ConfigError, match=gist.replace("-", r"\-")):
        tiny(**overrides)


def test_an_audited_run_on_a_real_task_ends_with_the_decided_summary(tmp_path):
    config = tiny(env="CartpoleSwingup", episode_length=100, algo="cikd", ensemble_size=3,
                  total_steps=1024, learning_starts=64, distill_interval=128,
                  distill_warmup=128, audit_election=True, audit_episodes=16,
                  election_rule="confident", election_metric="eval")
    train(config, run_dir=tmp_path / "run", quiet=True)
    phases = [r for r in read_metrics(tmp_path / "run", "distill") if "hit" in r]
    assert len(phases) >= 4
    for r in phases:
        assert len(r["audit_se"]) == 3 and all(se > 0 for se in r["audit_se"])
        assert isinstance(r["decided"], bool) and 0 <= r["regret_normalized"] <= 1
    end = read_metrics(tmp_path / "run", "run")[-1]
    assert end["election_decided_phases"] == sum(r["decided"] for r in phases)
    assert "election_hit_rate_decided" in end and end["election_regret_normalized"] is not None
    # the confident rule's coverage beside its hit rate: the share of elected phases it distilled
    assert end["election_coverage"] == pytest.approx(np.mean([r["ran"] for r in phases]))
