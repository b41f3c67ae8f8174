"""The package's rooms by role: the core (agent/, cikd/, envs/, loop/, config/) never imports
the host, the experiments or the measurement code, so the algorithm reads without them."""

import ast
import pathlib

import mjx_cikd

PACKAGE = pathlib.Path(mjx_cikd.__file__).resolve().parent
CORE = ("agent", "cikd", "envs", "loop", "config")
OUTER = ("host", "experiments", "bench")


def imported(path: pathlib.Path) -> set[str]:
    """Every mjx_cikd module a file imports, at any depth of the file (function-local too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mjx_cikd"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("mjx_cikd"))
    return names


def violations(root: pathlib.Path) -> list[str]:
    files = [f for room in CORE for f in (root / room).rglob("*.py")]
    return [f"{f.relative_to(root)} imports {name}" for f in files if f.is_file()
            for name in sorted(imported(f)) if name.split(".")[1:2] in ([o] for o in OUTER)]


def test_the_core_imports_no_host_experiments_or_bench():
    assert violations(PACKAGE) == []


def test_the_check_fails_when_a_core_module_imports_the_host(tmp_path):
    for room in CORE:
        (tmp_path / room).mkdir()
    (tmp_path / "loop" / "trainer.py").write_text(
        "def f():\n    from mjx_cikd.host import checkpoint\n")
    (tmp_path / "agent" / "sac.py").write_text("from mjx_cikd import bench\n")
    assert violations(tmp_path) == ["agent/sac.py imports mjx_cikd.bench",
                                    "loop/trainer.py imports mjx_cikd.host",
                                    "loop/trainer.py imports mjx_cikd.host.checkpoint"]


def test_every_module_lives_in_a_room():
    flat = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert flat == []
