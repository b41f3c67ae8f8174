"""scripts/profiler.py: a trace that holds the annotated chunks, and the phase-breakdown table."""

from conftest import script


def test_profile_writes_a_trace_of_the_chunks_and_prints_the_breakdown(tmp_path, capsys):
    trace_dir = tmp_path / "trace"
    rc = script("profiler").main(["--profile", "tiny", "--env", "ProbeTarget",
                                  "--episode_length", "0",
                         "--algo", "sac", "--ensemble_size", "1", "--total_steps", "256",
                         "--log_every", "64", "--compile_cache", "", "--chunks", "2",
                         "--repeats", "1", "--trace_dir", str(trace_dir)])
    assert rc == 0
    traces = list(trace_dir.rglob("*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
    data = traces[0].read_bytes()
    # the annotations of the traced chunks are in it, the warm-up chunk's compilation is not
    assert b"chunk0" in data and b"chunk1" in data and b"chunk2" not in data
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("| N "))
    row = next(line for line in table.splitlines() if "| sac |" in line)
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")]))
    assert float(cells["efficiency"].rstrip("x")) > 0
    assert float(cells["loop steps/s"].replace(",", "")) > 0


def test_profile_refuses_a_bad_chunk_count(capsys):
    assert script("profiler").main(["--profile", "tiny", "--env", "ProbeTarget",
                                    "--chunks", "0"]) == 2
    assert "--chunks" in capsys.readouterr().err
