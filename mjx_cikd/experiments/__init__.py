"""Many runs: the paper's experiment sets and their planning (`plan`), spreading them over a Ray
cluster (`cluster`), and the curves, tables, figures (`analysis`) and statistics (`stats`) read
from their run directories."""
