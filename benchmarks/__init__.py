"""CryptoLake benchmarks: ``python benchmarks/run.py --scale small|medium|large`` (see README, Performance)."""
