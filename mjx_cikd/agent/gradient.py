"""One gradient step, the one every optimiser of the package takes (as Brax's
`gradient_update_fn`): a loss's value and gradients, the optimiser's update, the new parameters.
SAC's critic, actor and temperature steps and the distillation's steps are this function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax


def gradient_step(loss: Callable[..., Any], tx: optax.GradientTransformation, params: Any,
                  opt_state: Any, *args: Any, has_aux: bool = False) -> tuple[Any, Any, Any]:
    """`loss(params, *args)` -> value_and_grad -> `tx.update` -> `optax.apply_updates`.
    -> (the loss, or (loss, aux) with `has_aux`, the new parameters, the new optimiser state)."""
    value, grads = jax.value_and_grad(loss, has_aux=has_aux)(params, *args)
    updates, opt_state = tx.update(grads, opt_state, params)
    return value, optax.apply_updates(params, updates), opt_state
