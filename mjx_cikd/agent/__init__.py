"""One SAC agent and the ensemble of K: networks, losses and updates (each a `gradient_step`),
the shared replay buffer and the shared observation normaliser, and the choices by mask the
rooms above make (`masks`). Imports nothing outside `agent/` but `config` and the gradient
averaging of `loop.parallel`."""
