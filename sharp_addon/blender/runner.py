"""The one inference worker of this Blender session, and how long it lives.

No UI here. The worker process holds the loaded network; "Keep Model Loaded" in the
preferences decides whether it outlives a run. It always ends when the add-on is disabled.
"""

from __future__ import annotations

from ..worker import InferenceWorker

_worker: InferenceWorker | None = None


def worker() -> InferenceWorker:
    """The session's worker (its process starts with the first job)."""
    global _worker
    if _worker is None:
        _worker = InferenceWorker()
    return _worker


def finished_run(keep_loaded: bool) -> None:
    """After a run: free the network's memory unless the user keeps it loaded."""
    if _worker is not None and not keep_loaded:
        _worker.stop()


def shutdown() -> None:
    """End the worker process (add-on disabled, Blender quitting)."""
    global _worker
    if _worker is not None:
        _worker.close()
        _worker = None
