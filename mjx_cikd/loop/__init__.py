"""The jitted loop: one chunk of vector steps as a `lax.scan` (`trainer`), the deterministic
evaluation, the in-loop checks for non-finite values, and the device mesh (`parallel`).
Nothing here imports `host/`, `experiments/` or `bench/` (tests/test_architecture.py)."""
