"""scripts/reproduce.py --cluster ray (mjx_cikd/experiments/cluster.py): the flag, the resources
a run asks for, one-line errors, the order a plan is carried out in (on a stand-in for Ray), and a
whole tiny fig1 on a local Ray instance of this machine, failing, resumed and plotted."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
from conftest import TINY

from mjx_cikd.config import ConfigError
from mjx_cikd.experiments import cluster
from mjx_cikd.experiments import plan as experiments
from mjx_cikd.experiments.cluster import ClusterSpec

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPRODUCE, PLOT = ROOT / "scripts" / "reproduce.py", ROOT / "scripts" / "plot.py"
# fig1 on the probe task, one seed, two evaluations: compiles in seconds
TINY_FIG1 = ("fig1", "--tasks", "ProbeTarget", "--seeds", "1", "--profile", "tiny",
             "--total_steps", "256", "--log_every", "128", "--compile_cache", "",
             "--progress", "false", "--tensorboard", "false")
ENV = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")  # nothing to report to, from a test


def _script(*args, timeout=600):
    """Run a script; its exit status, stderr and pid (to tell the driver from Ray's workers)."""
    with subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV) as proc:
        _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, proc.pid


def _plan(set_name, out):
    profile = {k: v for k, v in TINY.items() if k != "env"}
    return experiments.plan(set_name, ["ProbeTarget"], 1, pathlib.Path(out), {}, profile=profile)


def _finish(p):
    """What a finished run leaves: its config and a metrics.jsonl ending in a run/end record."""
    p.run_dir.mkdir(parents=True, exist_ok=True)
    (p.run_dir / "config.json").write_text(json.dumps(p.config.to_dict()))
    end = p.config.total_iters * p.config.num_envs
    (p.run_dir / "metrics.jsonl").write_text(
        json.dumps(dict(event="run", phase="end", env_steps=end)) + "\n")


def _one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# the flag and the resources


def test_the_cluster_flag_names_a_local_instance_or_an_address():
    assert cluster.parse(None) is None
    assert cluster.parse("ray") == ClusterSpec(None, 1.0)
    assert cluster.parse("ray=10.0.0.1:6379", "2") == ClusterSpec("10.0.0.1:6379", 2.0)
    assert cluster.parse("ray=auto", "0.5") == ClusterSpec("auto", 0.5)
    for bad, cpus, match in [("dask", None, "expected ray"), ("ray=", None, "expected ray"),
                             ("ray", "0", "> 0"), ("ray", "x", "cpus_per_run"),
                             (None, "2", "with --cluster only")]:
        with pytest.raises(ConfigError, match=match):
            cluster.parse(bad, cpus)
    assert cluster.host_port("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert cluster.host_port("ray://head:10001") == ("head", 10001)
    assert cluster.host_port("[::1]:6379") == ("::1", 6379)
    assert cluster.host_port("auto") is None


def test_a_run_asks_for_one_gpu_where_the_cluster_has_gpus_else_cpus():
    cpu_node = dict(Alive=True, Resources=dict(CPU=8.0))
    gpu_node = dict(Alive=True, Resources=dict(CPU=4.0, GPU=2.0))
    dead = dict(Alive=False, Resources=dict(CPU=64.0, GPU=8.0))
    assert cluster.resources([cpu_node], 1) == (1, 0)
    assert cluster.resources([cpu_node, dead], 8) == (8, 0)
    assert cluster.resources([cpu_node, gpu_node], 1) == (1, 1)
    with pytest.raises(ConfigError, match="beside a GPU"):  # the 8-CPU node has no GPU
        cluster.resources([cpu_node, gpu_node], 8)
    with pytest.raises(ConfigError, match="the most: 8"):
        cluster.resources([cpu_node, dead], 16)


def test_missing_ray_and_an_unreachable_address_are_one_line_before_planning(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is absent
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[cluster\]'"):
        cluster.run(ClusterSpec(None), plan=lambda: pytest.fail("planned without Ray"))
    monkeypatch.undo()

    class NoInit:
        def init(self, **kwargs):
            pytest.fail("ray.init was called on an unreachable address")

    with pytest.raises(ConfigError, match="cannot reach a Ray head"):
        cluster.connect(NoInit(), ClusterSpec(f"127.0.0.1:{_closed_port()}"))


def test_reproduce_refuses_bad_cluster_input_with_one_line_and_status_2():
    for argv in (["--cluster", "dask"], ["--cpus_per_run", "2"],
                 ["--cluster", f"ray=127.0.0.1:{_closed_port()}"]):
        status, err, _ = _script(REPRODUCE, *TINY_FIG1, "--out", "/nonexistent/x", *argv,
                                 timeout=300)
        assert status == 2, err[-2000:]
        _one_error_line(err)
    # the same without Ray installed: `import ray` fails as it does where Ray is absent
    code = ("import runpy, sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    status, err, _ = _script("-c", code, REPRODUCE, *TINY_FIG1, "--out", "/nonexistent/x",
                             "--cluster", "ray", timeout=300)
    assert status == 2 and "pip install -e '.[cluster]'" in _one_error_line(err)


# --------------------------------------------------------------------------------------
# the order a plan is carried out in, on a stand-in for Ray


class _Boom(Exception):
    """Ray's error for a task that raised: the worker's exception in `cause`."""

    def __init__(self, cause):
        super().__init__(f"ray::_execute() failed\n{cause!r}")
        self.cause = cause


class _FakeRay:
    """The calls `cluster.dispatch` makes of Ray, recorded; a task "runs" when fetched (it leaves
    a finished run directory, or fails for the variants in `fail`)."""

    class exceptions:
        RayError = _Boom

    def __init__(self, events, fail=()):
        self.events, self.fail, self.decorated, self.options = events, fail, None, None

    def nodes(self):
        return [dict(Alive=True, Resources=dict(CPU=2.0))]

    def remote(self, **decorated):
        self.decorated = decorated
        return lambda fn: _FakeFunction(self)

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        p = ref.run
        self.events.append(("ran", p.variant.name))
        if p.variant.name in self.fail:
            raise _Boom(ValueError("diverged"))
        _finish(p)
        return cluster.Ran("node", 1)


class _Ref:
    """An object ref of the stand-in: the run it would train."""

    def __init__(self, run):
        self.run = run


class _FakeFunction:
    """A remote function of the stand-in."""

    def __init__(self, fake):
        self.fake = fake

    def options(self, **options):
        self.fake.options = options
        return self

    def remote(self, p, index, total):
        self.fake.events.append(("submitted", p.variant.name))
        return _Ref(p)


def test_skips_first_then_tasks_then_reuse_copies_and_a_failure_does_not_stop_the_others(
        tmp_path, monkeypatch):
    out = tmp_path / "runs"
    sac, ens, cikd = _plan("fig1", out)
    _finish(sac)
    _finish(cikd)
    # fig1: Vanilla-SAC and SAC-CIKD skipped, Ensemble-SAC trains; fig3: K=2 trains (and fails
    # here), K=3 is fig1's SAC-CIKD (reused), K=5 trains
    planned = _plan("fig1", out) + _plan("fig3", out)
    assert [p.action for p in planned] == ["skip", "train", "skip", "train", "reuse", "train"]

    events = []
    real_execute = experiments.execute

    def on_driver(p, index, total):
        events.append((p.action, p.variant.name))
        real_execute(p, index, total)

    monkeypatch.setattr(experiments, "execute", on_driver)
    fake = _FakeRay(events, fail=("SAC-CIKD (K=2)",))
    failures = cluster.dispatch(fake, planned, 1)

    assert events == [("skip", "Vanilla-SAC"), ("skip", "SAC-CIKD"),
                      ("submitted", "Ensemble-SAC"), ("submitted", "SAC-CIKD (K=2)"),
                      ("submitted", "SAC-CIKD (K=5)"), ("ran", "Ensemble-SAC"),
                      ("ran", "SAC-CIKD (K=2)"), ("ran", "SAC-CIKD (K=5)"),
                      ("reuse", "SAC-CIKD (K=3)")]
    assert fake.decorated == dict(max_calls=1, max_retries=0)  # a process per run, no retries
    assert fake.options == dict(num_cpus=1, num_gpus=0)
    assert failures == [cluster.Failure("fig3/ProbeTarget/SAC-CIKD (K=2)", planned[3].run_dir,
                                        "ValueError: diverged")]
    line = cluster.failure_line(failures, len(planned))
    assert line.startswith("1 of 6 run(s) failed") and "SAC-CIKD (K=2) (ValueError" in line
    reused = experiments.VariantRecord.read(planned[4].run_dir)
    assert reused.reused_from == str(cikd.run_dir)

    relative = _plan("fig1", pathlib.Path("runs-relative"))
    with pytest.raises(ValueError, match="absolute"):
        cluster.dispatch(_FakeRay([]), relative, 1)
    planned[1].action = "something new"
    with pytest.raises(ValueError, match="something new"):
        cluster.dispatch(_FakeRay([]), planned, 1)


# --------------------------------------------------------------------------------------
# the whole thing, on a local Ray instance


def _files(out):
    """The run directories' files, relative to `out` (checkpoints' insides aside)."""
    return sorted(str(p.relative_to(out)) for p in out.glob("*/*/*/*") if p.is_file())


def _finished(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    return experiments.finished_steps(run_dir) == config["total_steps"] and \
        (run_dir / "variant.json").is_file()


def _workers(stderr):
    """The worker pids the driver reports, per run."""
    return {line.split(": finished")[0].split("] ", 1)[1]: int(line.rsplit("pid ", 1)[1][:-1])
            for line in stderr.splitlines() if line.startswith("[cluster] ")
            and ": finished on " in line}


def test_reproduce_on_a_local_ray_cluster_finishes_resumes_and_plots_like_the_local_path(
        tmp_path):
    runs, local, figs = tmp_path / "runs", tmp_path / "local", tmp_path / "figs"
    names = [f"fig1/ProbeTarget/{v.name}" for v in experiments.SETS["fig1"].variants]
    dirs = [runs / "fig1" / "ProbeTarget" / v.slug for v in experiments.SETS["fig1"].variants]
    # Ensemble-SAC cannot be written (a file where its directory goes): its task fails
    dirs[1].parent.mkdir(parents=True)
    dirs[1].write_text("in the way")
    status, err, driver = _script(REPRODUCE, *TINY_FIG1, "--out", runs, "--cluster", "ray")
    assert status == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 3 run(s) failed on the cluster: ") and \
        f"{names[1]} (FileExistsError" in last and "re-run" in last, err[-3000:]
    workers = _workers(err)
    assert set(workers) == {names[0], names[2]}, err[-3000:]  # the others went on, to the end
    assert driver not in workers.values()  # in Ray's worker processes, not the driver
    assert _finished(dirs[0]) and _finished(dirs[2])

    # the same command again: the finished runs skipped, the failed one trained
    dirs[1].unlink()
    status, err, _ = _script(REPRODUCE, *TINY_FIG1, "--out", runs, "--cluster", "ray")
    assert status == 0, err[-3000:]
    assert set(_workers(err)) == {names[1]} and err.count("skipped") == 2, err[-3000:]
    assert all(_finished(d) for d in dirs)
    # and again: nothing left to train
    status, err, _ = _script(REPRODUCE, *TINY_FIG1, "--out", runs, "--cluster", "ray")
    assert status == 0 and err.count("skipped") == 3, err[-3000:]
    assert "0 run(s) submitted" in err and not _workers(err), err[-3000:]

    # plot.py reads it as it is
    status, err, _ = _script(PLOT, runs, "--out", figs, timeout=300)
    assert status == 0, err[-3000:]
    assert (figs / "fig1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (figs / "fig1.md").read_text()
    best = {row.split("|")[2].strip() for row in table.splitlines()
            if row.startswith("| ProbeTarget |") and "| best member |" in row}
    assert best == {v.name for v in experiments.SETS["fig1"].variants}, table

    # the local path lays out the same files
    status, err, _ = _script(REPRODUCE, *TINY_FIG1, "--out", local)
    assert status == 0, err[-3000:]
    assert _files(runs) == _files(local)
    for name in ("config.json", "metrics.jsonl", "variant.json"):
        assert sum(f.endswith("/" + name) for f in _files(runs)) == 3, _files(runs)
