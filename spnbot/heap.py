"""The long-running process's heap, set once the app has started.

Kept out of ``Application`` (a library class that tests start many times in one process):
``spnbot run`` calls it, and so does the bench's target, so the process measured there is the
one that runs in production.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Move what start-up allocated out of the collector's reach; returns how many objects.

    aiogram, pydantic and SQLAlchemy leave ~250k long-lived objects behind. Unfrozen, every
    full collection walks them all: ~200 ms of stop-the-world each, which a payment burst
    sees as its p99.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
