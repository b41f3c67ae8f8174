"""Many runs: the paper's experiment sets and their planning (`plan`), spreading them over a Ray
cluster (`cluster`), and what is read back from their run directories (`runs`): the tables
(`tables`), the figures (`figures`, `election_figure`), everything plot.py writes per set
(`analysis`) and the statistics (`stats`)."""
