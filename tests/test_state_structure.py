"""The training state is addressed by its structure: the replay rows are one pytree
(`Replay.data`), the per-slot fields one sub-record (`TrainState.slots`); what a checkpoint
leaves out and what a device mesh splits are chosen from them, never by matching path strings."""

import pathlib
import re

import jax
import pytest
from conftest import tiny

from mjx_cikd.config import ConfigError
from mjx_cikd.host import checkpoint, compiled
from mjx_cikd.loop.state import env_axis
from mjx_cikd.loop.trainer import make_train

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _shapes(config):
    return jax.eval_shape(jax.vmap(make_train(config).init), compiled.seed_keys(config))


def _names(tree) -> set[str]:
    return {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)}


def test_no_leaf_is_chosen_by_a_path_string_in_the_loop_or_the_host():
    pattern = re.compile(r"buffer\.obs|\.buffer\.")
    hits = [f"{path.relative_to(ROOT)}:{i}" for room in ("loop", "host")
            for path in sorted((ROOT / "mjx_cikd" / room).glob("*.py"))
            for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_a_checkpoint_without_the_buffer_leaves_out_exactly_the_rows():
    shapes = _shapes(tiny())
    meta = checkpoint.describe(tiny(checkpoint_buffer=False), "jax", shapes)
    rows = {".buffer.data" + name for name in _names(shapes.buffer.data)}
    assert set(meta["rows"]) == rows
    assert not rows & set(meta["shapes"])
    assert {".buffer.ptr", ".buffer.size", ".slots.player"} <= set(meta["shapes"])


def test_the_layout_marks_the_slots_and_the_rows_and_nothing_else():
    shapes = _shapes(tiny())
    marked = {jax.tree_util.keystr(p) for p, on in jax.tree_util.tree_leaves_with_path(
        env_axis(shapes)) if on}
    assert marked == ({".slots" + n for n in _names(shapes.slots)}
                      | {".buffer.data" + n for n in _names(shapes.buffer.data)})


def _old_path(name: str) -> str:
    """A leaf's path before this structure: `.slots.player` was `.member`, the other per-slot
    fields sat at the top (`.slots.ep_return` was `.ep_return`), `.buffer.data.obs` was
    `.buffer.obs`."""
    if name == ".slots.player":
        return ".member"
    if name.startswith(".slots."):
        return name[len(".slots"):]
    return name.replace(".buffer.data.", ".buffer.", 1)


def _before_slots(meta: dict) -> dict:
    """The meta of a checkpoint written before the rows moved into `data` and the per-slot
    fields into `slots` (the rows were state leaves like any other)."""
    return dict(meta, shapes={_old_path(k): v for k, v in {**meta["shapes"],
                                                           **meta["rows"]}.items()}, rows={})


def _before_player(meta: dict) -> dict:
    """The meta of a checkpoint written before `Slots.member` (which member plays each env
    slot) became `Slots.player`."""
    return dict(meta, shapes={(".slots.member" if k == ".slots.player" else k): v
                              for k, v in meta["shapes"].items()})


@pytest.mark.parametrize("before, where", [(_before_slots, ".buffer.action"),
                                           (_before_player, ".slots.member")])
def test_a_checkpoint_of_the_state_before_its_structure_is_refused_in_one_line(tmp_path, before,
                                                                              where):
    """Written before the rows moved into `data` and the per-slot fields into `slots`, or before
    the slot's member became its player: its meta names the old paths, and the resume says
    where it differs, in one line."""
    config = tiny()
    trainer = make_train(config)
    state = jax.vmap(trainer.init)(compiled.seed_keys(config))
    meta = checkpoint.describe(config, "jax", state)
    old = before(meta)
    checkpoint.save(tmp_path, 8, state, trainer.schedule(), old, keep=1)
    with pytest.raises(ConfigError, match=r"is not this run's checkpoint: its state differs in "
                                          r"shape at \.") as err:
        checkpoint.verify(tmp_path, 8, meta)
    assert "\n" not in str(err.value) and f"shape at {where} " in str(err.value)
    checkpoint.verify(tmp_path, 8, old)  # the same files under the old meta: accepted
