"""The benchmark suite of pubsubkit and myevents: ``python bench/run.py --help``."""
