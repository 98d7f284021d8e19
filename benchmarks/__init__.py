"""CryptoLake benchmarks: ``python benchmarks/run.py --scale small|medium|large`` (see docs/performance.md)."""
