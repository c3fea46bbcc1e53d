"""Process pools that are safe to start in a process that already runs threads.

``fork`` copies a process whose torch, OpenCV or ONNX Runtime thread pools may hold locks, and a
forked child can then wait on a lock forever (a full test run once hung 20 minutes on one). So the
kit's pools start their workers with ``forkserver`` (a clean server process forks them; ``spawn``
where the platform lacks it) and pass them what they need as arguments. Imports nothing of the kit.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext
from typing import Sequence


def pool_context(preload: Sequence[str] = ()) -> BaseContext:
    """The start method for every worker pool the kit opens.

    ``preload``: modules the fork server imports once, before it forks workers, so that each worker does not
    import them again (it has effect when the process starts its first fork server).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context
