"""envwatch benchmarks (``make bench``)."""
