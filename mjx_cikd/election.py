"""Teacher election (paper section 4.4): k_t = argmax_k R_k.

R_k is the mean return of member k's last M finished training episodes (`selection.recent_mean`).
Ties go to the lowest index; a member with no finished episode (R_k is NaN) cannot win; when no
member has one, there is no teacher and the phase is skipped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def elect_teacher(recent_returns: jax.Array) -> tuple[jax.Array, jax.Array]:
    """-> (teacher index, whether any member is eligible)."""
    eligible = ~jnp.isnan(recent_returns)
    scores = jnp.where(eligible, recent_returns, -jnp.inf)
    return jnp.argmax(scores).astype(jnp.int32), eligible.any()
