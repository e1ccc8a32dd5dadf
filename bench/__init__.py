"""Benchmarks: the real app against the sandbox emulators, each scenario next to its floor.

Run ``python -m bench.run`` (``--help`` for the knobs); see the README's "Performance" section.
"""
