"""Load tests, replays, simulation and benchmarks."""
