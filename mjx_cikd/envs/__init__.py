"""Tasks by name: Playground's DM Control suite and Brax's Gym-MuJoCo tasks under MJX-JAX or
MuJoCo Warp, batched and auto-resetting (`tasks`), and probe tasks with known answers (`probes`)."""
