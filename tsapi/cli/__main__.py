"""`python -m tsapi.cli`: the tsapi command (the benchmarks migrate their databases so)."""

from tsapi.cli import main

main()
