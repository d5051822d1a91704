"""The benchmark suite: `python -m bench` (or `make bench`) runs B1-B5 and writes BENCHMARKS.md.

Every figure is a ratio to a reference measured in the same run, side by side, because the machine is
shared and noisy: absolute seconds move with the neighbours, ratios much less. `--smoke` runs tiny
sizes in well under a minute (tests/bench runs it so the suite cannot rot); `--only B3` runs one.
"""
