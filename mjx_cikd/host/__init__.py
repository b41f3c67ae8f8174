"""The host around the loop: building and running a run chunk by chunk (`run`), its records and
run directory, checkpoints, signals, the disk cache of MuJoCo Warp's starts, and playing a saved
run's members back."""
