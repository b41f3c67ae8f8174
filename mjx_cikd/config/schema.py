"""The run configuration's schema: the one frozen `Config`, each field with its description.

A field's description (`knob`: what it sets, its unit, what each allowed value means, why the
default is what it is) is the one text `--help` prints (`config.flags`) and the README's knob
table points to. Units: "env steps" are transitions summed over the N envs (one vector step is N
env steps); "SAC updates" are gradient steps of each member.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


class ConfigError(ValueError):
    """Bad user input: reported as one line, before any compilation."""


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def knob(default, meaning: str, *, unit: str = "", choices: dict[str, str] | None = None,
         why: str = ""):
    """A Config field with its description: `meaning` (what it sets), `unit` (of a count),
    `choices` (each allowed value: what it does), `why` (the reason behind the default)."""
    return dataclasses.field(default=default, metadata={
        "meaning": meaning, "unit": unit, "choices": choices or {}, "why": why})


ENV_STEPS = "env steps"
UPDATES = "SAC updates"
# The SAC defaults are MuJoCo Playground's tuned config (brax_sac_config), chosen by the baseline
# study against Brax's own SAC in that config (docs/results.md, issue 21)
# an --eval_every that never falls inside a run (the loop's env-step counter is an int32): what
# a benchmark's timed chunks and a fork's continuation set
NO_EVAL = 2**31 - 1
PLAYGROUND_WHY = "Playground's tuned SAC, chosen by the baseline study (docs/results.md)"


@dataclass(frozen=True)
class Config:
    # --- task -------------------------------------------------------------------------------
    env: str = knob("CheetahRun", "the task: a Playground DM Control task (CheetahRun, "
                    "CartpoleSwingup, WalkerWalk, ...) or a Brax Gym-MuJoCo one (halfcheetah, "
                    "hopper, ...)")
    impl: str = knob("auto", "the MJX implementation that steps the task", choices={
        "auto": "a fixed rule from this project's CPU measurements (envs/tasks.py, "
                "_AUTO_CPU_PREFERS_JAX): on a CPU with MuJoCo Warp installed, jax for the "
                "Cartpole, Pendulum, Acrobot, PointMass and Reacher tasks and warp for the "
                "others; jax on any other device or without Warp; Brax and probe tasks: jax",
        "jax": "MJX-JAX",
        "warp": "MuJoCo Warp (pip install warp-lang)"})
    episode_length: int = knob(0, "T, the time limit of a training episode (a truncation, "
                               "bootstrapped through); 0: the task's own", unit=ENV_STEPS
                               + " of one env")
    stagger_episodes: bool = knob(True, "start each env's time-limit clock at a random step",
                                  why="resets spread out, and R_k has finished (first, shorter) "
                                      "episodes within T/N steps")
    num_envs: int = knob(128, "N, environments stepped side by side (one vector step = N env "
                         "steps)", unit="envs",
                         why="Playground's tuned SAC (brax_sac_config); with B = 512 and U = 8 "
                             "it beat Brax's own SAC in that config on 2 of 3 DM Control tasks "
                             "at 5 seeds (docs/results.md, issue 21)")
    total_steps: int = knob(1_000_000, "the budget: env steps to train for, rounded up to whole "
                            "vector steps", unit=ENV_STEPS)
    seed: int = knob(0, "the random seed; seed s of --num_seeds runs from seed + s")
    num_seeds: int = knob(1, "independent seeds side by side in one program (vmap)",
                          unit="seeds")
    devices: int = knob(1, "D devices for one run (docs/parallel.md)", unit="devices")
    parallel: str = knob("data", "how a run with --devices > 1 uses them", choices={
        "data": "the envs and the replay buffer split over the D devices, gradients averaged",
        "seeds": "whole seeds placed on devices (--num_seeds a multiple of D)"})
    # --- ensemble ---------------------------------------------------------------------------
    algo: str = knob("cikd", "what is trained", choices={
        "sac": "Vanilla-SAC: one agent (K = 1)",
        "ensemble": "Ensemble-SAC: K agents sharing one replay buffer, no distillation",
        "cikd": "SAC-CIKD: the ensemble with teacher elections and distillation phases"})
    ensemble_size: int = knob(3, "K, the members of the ensemble (implied by --widths, and 1 by "
                              "--algo sac)", unit="members", why="the authors' K")
    widths: tuple[int, ...] = knob((), "each member's hidden width, comma-separated (--widths "
                                   "256,1024: a heterogeneous ensemble, the paper's Fig. 4); "
                                   "empty: --hidden_width for all", unit="units per layer")
    hidden_width: int = knob(256, "hidden width of every actor and critic", unit="units per "
                             "layer", why="the paper's (Haarnoja et al. 2018, Table 1)")
    hidden_layers: int = knob(2, "hidden layers of every actor and critic", unit="layers",
                              why="the paper's (Haarnoja et al. 2018, Table 1)")
    actor_layers: tuple[int, ...] = knob((), "each hidden layer's width of every actor, input "
                                         "side first, comma-separated (--actor_layers "
                                         "512,256,128: FastTD3's actor); empty: --hidden_layers "
                                         "layers of the member's width", unit="units per layer")
    critic_layers: tuple[int, ...] = knob((), "each hidden layer's width of every twin critic, "
                                          "comma-separated (--critic_layers 768,384,192: "
                                          "FastSAC's); empty: --hidden_layers layers of the "
                                          "member's width", unit="units per layer")
    log_std_bounds: str = knob("softplus", "how the actor's log-std is bounded", choices={
        "smooth": "a tanh squash into [-5, 2]",
        "clip": "the authors' hard clip into [-20, 2] (train_ensemble_sac.py:82)",
        "softplus": "std = softplus(x) + 0.001, Brax's SAC (NormalTanhDistribution): std 0.69 "
                    "at initialisation, against 0.22 under smooth (--profile playground)"},
        why="softplus: Brax's, part of the Playground config the defaults took from the "
            "baseline study (docs/results.md, issue 21); smooth, the default before it, keeps "
            "gradients alive at the edges, where a clip stops them")
    return_window: int = knob(5, "M: R_k under --election_metric train_returns is the mean of "
                              "member k's last M finished training episodes", unit="episodes",
                              why="the authors' M; it suits N = 1 (docs/election.md, 'The "
                                  "default, and M')")
    # --- SAC (Haarnoja et al. 2018, Table 1, unless the parallel setting says otherwise) ------
    actor_lr: float = knob(1e-3, "Adam step size of each actor", why=PLAYGROUND_WHY)
    critic_lr: float = knob(1e-3, "Adam step size of each twin critic", why=PLAYGROUND_WHY)
    alpha_lr: float = knob(1e-3, "Adam step size of each temperature alpha", why=PLAYGROUND_WHY)
    gamma: float = knob(0.99, "discount factor, in [0, 1)", why="Haarnoja et al. 2018")
    tau: float = knob(0.005, "soft target update rate per SAC update, in (0, 1]",
                      why="Haarnoja et al. 2018")
    init_alpha: float = knob(1.0, "initial temperature alpha")
    target_entropy_scale: float = knob(0.5, "the temperature's target entropy is -scale |A|",
                                       why="Brax's SAC (1 in Haarnoja et al.; --profile "
                                           "paper); " + PLAYGROUND_WHY)
    critic_layer_norm: bool = knob(True, "LayerNorm in the Q-networks' hidden layers",
                                   why="Playground's tuned SAC (off in the paper; --profile "
                                       "paper); " + PLAYGROUND_WHY)
    batch_size: int = knob(512, "B, the batch of each member's SAC update", unit="transitions",
                           why=PLAYGROUND_WHY)
    updates_per_step: int = knob(8, "U: SAC updates of every member per vector step",
                                 unit=UPDATES + " per vector step",
                                 why="Playground's tuned SAC: at N = 128, one update of B = "
                                     "512 per 16 env steps")
    buffer_size: int = knob(1_000_000, "replay capacity, shared by the members (rounded down "
                            "to a multiple of N)", unit="transitions",
                            why="Haarnoja et al. 2018")
    learning_starts: int = knob(8_192, "uniform random actions and no SAC update before this "
                                "many env steps", unit=ENV_STEPS,
                                why="Playground's min_replay_size; " + PLAYGROUND_WHY)
    # --- the massively parallel recipe (issue 29; each off by default) ----------------------
    n_step: int = knob(1, "n: the critic's target sums up to n rewards of the same env before it "
                       "bootstraps, stopping at the end of an episode (agent/returns.py)",
                       unit="env steps of one env",
                       why="SAC's one-step target (Eq. 6); FastTD3 and PQL use 3")
    twin_q: str = knob("min", "how the twin Qs combine in the critic's target and the actor's "
                       "objective", choices={
                           "min": "their minimum (clipped double Q, Haarnoja et al. 2018)",
                           "mean": "their mean (FastSAC)"})
    policy_delay: int = knob(1, "d: the actors and temperatures move at every d-th SAC update "
                             "of a vector step, the critics at every one (d must divide U)",
                             unit=UPDATES, why="SAC's; FastSAC moves the actor every 4th")
    explore_std_min: float = knob(1.0, "each env slot acts with its policy's std times a scale "
                                  "drawn uniformly from [--explore_std_min, --explore_std_max] "
                                  "at each episode start (agent/exploration.py); 1 and 1: off",
                                  why="SAC's own acting; FastTD3 and PQL give each env its own "
                                      "noise scale")
    explore_std_max: float = knob(1.0, "the upper bound of the per-env std scale (see "
                                  "--explore_std_min)")
    critic_atoms: int = knob(0, "A > 0: each twin Q is a categorical distribution over A atoms "
                             "(C51, agent/distributional.py); 0: a scalar Q",
                             unit="atoms", why="SAC's scalar critic; FastTD3 and FastSAC use 101")
    v_min: float = knob(0.0, "the lowest atom of a C51 critic's support; --v_min and --v_max "
                        "both 0: +-r_max / (1 - gamma), from the task's reward bound per step "
                        "(DM Control: 1)")
    v_max: float = knob(0.0, "the highest atom of a C51 critic's support (see --v_min)")
    weight_decay: float = knob(0.0, "AdamW's decoupled weight decay on every actor and critic "
                               "(and the distillation's optimiser, which shares their state); "
                               "0: Adam", why="Playground's SAC; FastSAC uses 0.001")
    normalize_obs: bool = knob(True, "one running observation normaliser shared by all members",
                               why="shared, so that distillation compares members on the same "
                                   "inputs; the authors use none (--profile paper)")
    # --- CIKD (paper section 4.4) -----------------------------------------------------------
    distill_interval_updates: int = knob(
        5_000, "I, the interval between phase points in SAC updates of each member; "
        "--distill_interval (env steps) replaces it", unit=UPDATES,
        why="the paper's 5000 env steps at one update per env step are 5000 updates, so the "
            "share of distillation per update is the paper's at any N and U; the study of "
            "issue 17 found no shorter interval (500, 1500, 4000) that wins, and a shorter one "
            "costs more elections (docs/results.md)")
    distill_interval: int = knob(0, "I in env steps instead, as the paper words it; 0: use "
                                 "--distill_interval_updates", unit=ENV_STEPS,
                                 why="at N envs and U updates per vector step, env steps would "
                                     "distil N/U times more often per update")
    distill_warmup: int = knob(10_000, "no phase before this many env steps", unit=ENV_STEPS,
                               why="the authors distil when t % I == 0 and t > 10000")
    distill_steps: int = knob(64, "D, gradient steps per phase (used when --distill_epochs is "
                              "0)", unit="distillation steps",
                              why="a bounded phase cost: 3-6% of the run at N = 64 "
                                  "(docs/benchmarks.md, goal 3); the authors' 5 passes over "
                                  "the buffer are ~290 steps at 15k transitions, ~19.5k at 1M")
    distill_epochs: float = knob(0.0, "E > 0: ceil(E * filled / B_d) steps per phase instead of "
                                 "D (the authors: 5)", unit="passes over the filled buffer")
    distill_batch_size: int = knob(256, "B_d, the batch of a distillation step",
                                   unit="transitions", why="the authors'")
    distill_lr: float = knob(3e-4, "step size of the fresh Adam each phase starts",
                             why="the authors' 1e-3 (--profile paper) ended some phases of D = "
                                 "64 steps mid-transient with the student's KL up 10-20x; 3e-4 "
                                 "lowered it in every case measured (docs/results.md)")
    distill_parts: str = knob("both", "what a student learns from the teacher", choices={
        "both": "the policy (Eq. 1) and the critics (L2 on Q1, Q2)",
        "policy": "the policy only (the authors' control)",
        "critic": "the critics only (the authors' control)"})
    distill_target: str = knob("soft", "the students' target critics after a phase", choices={
        "soft": "one tau step, as the authors' sync_target_network() does",
        "hard": "set to the students' new critics"}, why="the authors' (docs/fidelity.md)")
    hard_copy: bool = knob(False, "students become copies of the teacher instead of distilling "
                           "(the authors' control)")
    teacher: str = knob("best", "which member the election picks", choices={
        "best": "the highest R_k (ties to the lowest index)",
        "random": "a uniformly random member (the authors' control)",
        "worst": "the lowest R_k (the authors' control)"})
    election_metric: str = knob("eval", "the statistic R_k the teacher election ranks", choices={
        "train_returns": "the paper's: mean of member k's last M finished training episodes",
        "reward_rate": "mean reward per env step since the last phase, x T (free)",
        "eval": "the periodic deterministic evaluation (--eval_episodes per member), which "
                "falls at every phase point just before it: the authors' eval metric, their "
                "last periodic evaluation (train_ensemble_sac.py:402-403)"},
        why="at N = 64 and 256 the paper's statistic describes policies many phases old and "
            "elects the truly best member no more often than chance; eval elects it 81-100% "
            "of the time (docs/election.md); read off the periodic evaluation, it costs no "
            "evaluation of its own")
    audit_election: bool = knob(False, "evaluate every member at each phase, for the record "
                                "only: the election's hit rate and regret, on decided phases "
                                "apart (docs/election.md)")
    audit_episodes: int = knob(100, "episodes per member of the audit (one batch of K x n "
                               "envs)", unit="episodes", why="the audit's standard error must "
                               "be small against the members' spread, or a hit rate against "
                               "it says nothing; 10 were as noisy as the election on tasks whose "
                               "return varies with the start (issue 17)")
    election_rule: str = knob("confident", "when the elected member teaches (unless given, "
                              "argmax where --teacher is not best or the statistic has no "
                              "standard error)", choices={
        "argmax": "always (the paper's)",
        "confident": "only when it leads the runner-up by more than --election_z standard "
                     "errors of the difference; else the phase is skipped and its record says "
                     "`declined`"},
        why="the study of issue 17 chose it by its pre-registered rule: level with argmax in "
            "return on both tasks (docs/results.md), and the better election "
            "(docs/election.md)")
    election_z: float = knob(2.0, "the lead, in standard errors of the difference, that "
                             "--election_rule confident needs")
    distill_optimizer: str = knob("fresh", "what a student's SAC updates use after a phase",
                                  choices={
        "fresh": "its own Adam, as before the phase (the distillation's Adam is dropped)",
        "handover": "the distillation's Adam (its moments, its count, --distill_lr) until the "
                    "next phase, as in the authors' chainer code (docs/fidelity.md)"},
        why="the paper does not mention the handover, and the study of issue 17 found it "
            "level with a fresh Adam on both tasks (docs/results.md)")
    lr_after_warmup: float = knob(0.0, "> 0: every member's actor and critic learning rate "
                                  "becomes this at the first phase point (--algo ensemble: the "
                                  "control that moves the learning rate without distilling)")
    distill_schedule: str = knob("fixed", "which phase points distil", choices={
        "fixed": "every phase point",
        "ada": "only when the best member's softmax(R / --selection_temperature) >= "
               "--ada_threshold (the authors' adaptive schedule)"})
    ada_threshold: float = knob(0.8, "the confidence --distill_schedule ada needs, in [0, 1]")
    policy_selection: str = knob("uniform", "which member runs each env slot, drawn at each "
                                 "episode start after --learning_starts", choices={
                                     "uniform": "uniform over the members (the paper's)",
                                     "softmax": "softmax over R_k / --selection_temperature",
                                     "eps_greedy": "the best R_k, else uniform with epsilon "
                                                   "decaying from 1 to --selection_epsilon"})
    selection_temperature: float = knob(1.0, "temperature of the softmax selection and of the "
                                        "ada test")
    selection_epsilon: float = knob(0.1, "final epsilon of eps_greedy selection, in [0, 1]")
    selection_epsilon_steps: int = knob(500_000, "env steps over which epsilon decays linearly "
                                        "from 1", unit=ENV_STEPS,
                                        why="the authors' default (train_ensemble_sac.py:169)")
    extra_updates: bool = knob(False, "sac/ensemble '(extra)': each phase point's distillation "
                               "steps spent as SAC updates instead (the paper's Fig. 2)")
    # --- evaluation, logging ----------------------------------------------------------------
    log_every: int = knob(20_000, "one compiled chunk and one log point per this many env "
                          "steps", unit=ENV_STEPS)
    eval_every: int = knob(0, "env steps between deterministic evaluations inside the loop; 0: "
                           "at every point of the phase schedule (every I SAC updates of each "
                           "member, in any --algo) and at the run's end. Under --algo cikd "
                           "with --election_metric eval one also falls at every phase point, "
                           "whatever this says: the election reads it", unit=ENV_STEPS,
                           why="on the default task on a CPU one evaluation is 1,000 sequential "
                               "MuJoCo Warp steps (12-19 s), and one at every log point was "
                               "38% of the run (issue 31); the election needs one at every "
                               "phase point anyway (docs/election.md, 'Cost')")
    eval_episodes: int = knob(10, "n, deterministic (tanh(mean)) episodes per member and "
                              "evaluation; the eval election's statistic is their mean and "
                              "standard error", unit="episodes",
                              why="the confident rule meets the election's goal at 10 on both "
                                  "tasks measured, where argmax needs ~100 (docs/election.md)")
    run_dir: str = knob("", "the run directory; empty: runs/<env>-<algo>-k<K>-<time>")
    checkpoint_every: int = knob(200_000, "env steps between checkpoints (one is also written "
                                 "at the end and on Ctrl-C); 0: at the end only",
                                 unit=ENV_STEPS)
    keep_checkpoints: int = knob(2, "the newest this many complete checkpoints are kept",
                                 unit="checkpoints",
                                 why="one to fall back on when the newest is damaged")
    checkpoint_buffer: bool = knob(True, "checkpoints hold the replay buffer",
                                   why="only then is a resumed run the uninterrupted one, bit "
                                       "for bit (docs/survival.md)")
    on_nonfinite: str = knob("stop", "what a NaN or inf in a loss, parameter or return does "
                             "(docs/survival.md)", choices={
                                 "stop": "stop (exit 1), keeping the last good checkpoint",
                                 "rollback": "restore the last good checkpoint, the faulty seeds "
                                             "with fresh keys, at most --max_rollbacks times"})
    max_rollbacks: int = knob(3, "rollbacks before a run with --on_nonfinite rollback stops",
                              unit="rollbacks")
    progress: str = knob("bar", "progress on stderr", choices={
        "bar": "a tqdm bar, redrawn in place",
        "plain": "one line per log point, no carriage returns (SLURM and other batch logs)",
        "off": "nothing but the start and end lines"})
    compile_cache: str = knob("~/.cache/mjx_cikd/xla", "the persistent compilation cache (XLA, "
                              "Warp starts); \"\" turns it off",
                              why="it cut the time to a run's first step 2-4x "
                                  "(docs/benchmarks.md, goal 4)")
    tensorboard: bool = knob(True, "TensorBoard event files in RUN_DIR/tb")
    wandb: str = knob("", "a Weights & Biases project to log to as well (pip install "
                      "'mjx_cikd[wandb]'); \"\": off")
    wandb_entity: str = knob("", "the W&B team or user (\"\": your default entity)")
    wandb_group: str = knob("", "a W&B group for the run (e.g. one per experiment set)")

    # ---------------------------------------------------------------------------------------
    @property
    def member_widths(self) -> tuple[int, ...]:
        return self.widths if self.widths else (self.hidden_width,) * self.ensemble_size

    def actor_sizes(self, width: int) -> tuple[int, ...]:
        """The hidden layers' widths of an actor of member width `width`."""
        return self.actor_layers or (width,) * self.hidden_layers

    def critic_sizes(self, width: int) -> tuple[int, ...]:
        """The hidden layers' widths of each twin critic of member width `width`."""
        return self.critic_layers or (width,) * self.hidden_layers

    @property
    def total_iters(self) -> int:
        return max(1, ceil_div(self.total_steps, self.num_envs))

    @property
    def num_chunks(self) -> int:
        return ceil_div(self.total_iters, max(1, self.log_every // self.num_envs))

    @property
    def iters_per_chunk(self) -> int:
        """Vector steps per compiled chunk: at most log_every env steps, spread evenly so that
        the run overshoots total_steps by less than one step per chunk."""
        return ceil_div(self.total_iters, self.num_chunks)

    @property
    def last_step(self) -> int:
        """The env step the run ends at: every chunk runs whole (`iters_per_chunk`)."""
        return self.num_chunks * self.iters_per_chunk * self.num_envs

    @property
    def interval_in_updates(self) -> bool:
        return self.distill_interval == 0

    @property
    def phase_period(self) -> int:
        """Vector steps from one phase point to the next: ceil(I_updates / U) of the steps that
        update (the interval in SAC updates), or ceil(I / N) of all steps (in env steps)."""
        if self.interval_in_updates:
            return ceil_div(self.distill_interval_updates, self.updates_per_step)
        return ceil_div(self.distill_interval, self.num_envs)

    @property
    def phases_on(self) -> bool:
        """Whether the loop has phase points: CIKD's phases, the "(extra)" updates, or the
        learning-rate switch of --lr_after_warmup."""
        return self.algo == "cikd" or self.extra_updates or self.lr_after_warmup > 0

    @property
    def buffer_rows(self) -> int:
        """Capacity in transitions: a multiple of num_envs, so one write never wraps."""
        return (self.buffer_size // self.num_envs) * self.num_envs

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# the allowed values of every choice field, in the order the descriptions give them
CHOICES = {name: tuple(f.metadata["choices"]) for name, f in FIELDS.items()
           if f.metadata["choices"]}
