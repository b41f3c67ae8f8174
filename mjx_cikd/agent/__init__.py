"""One SAC agent and the ensemble of K: networks, losses and updates, the shared replay buffer
and the shared observation normaliser. Imports nothing outside `agent/` but `config` and the
gradient averaging of `loop.parallel`."""
