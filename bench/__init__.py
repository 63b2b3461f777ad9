"""The benchmark harness of issue 7: ``python -m bench.run`` (``make bench``, ``make bench-smoke``).

One module per measurement (ceiling, streaming, latency, Spark peer, naive baseline, batch,
serving); :mod:`bench.run` runs them in order on one broker and writes ``bench/results/<time>.json``.
See docs/benchmarks.md.
"""
