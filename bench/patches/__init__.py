"""What-if patches: proposed spnbot changes tried without editing spnbot.

``python -m bench.run --patch bench.patches.NAME`` imports each module in the app process
before the app is built; the run is labelled "WHAT-IF". A patch is a monkeypatch for measuring
a proposal's gain, not a fix: the real change belongs in spnbot/ (each module names the file
and function). The first round (pool sizing, no pre-ping, pinned response types, frozen heap,
partial-index claims, async filters) has landed in spnbot/ and its patches were removed.
"""
