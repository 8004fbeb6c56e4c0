"""The one inference worker of this Blender session, and when it is kept.

No UI here. The worker process holds the loaded network; "Keep Model Loaded" in the
preferences decides whether it outlives a run. It always ends when the add-on is disabled.
"""

from __future__ import annotations

import os

from ..gaussians import Gaussians
from ..worker import InferenceWorker, Job

_worker: InferenceWorker | None = None
_last: tuple[tuple, Gaussians] | None = None  # the last result, for the redo panel


def job_key(job: Job) -> tuple:
    """What decides a result: the image file as it is now and every inference setting."""
    stat = os.stat(job.image)
    return (job.image, stat.st_size, stat.st_mtime_ns, job.checkpoint, job.device, job.precision, job.focal_35mm)


def remember(job: Job, gaussians: Gaussians) -> None:
    """Keep the last result (66 MB at full size): changing a display option in the redo panel
    re-runs the operator, which then rebuilds from it instead of running SHARP again."""
    global _last
    _last = (job_key(job), gaussians)


def recall(job: Job) -> Gaussians | None:
    """The remembered result if ``job`` would compute the same thing."""
    try:
        return _last[1] if _last is not None and _last[0] == job_key(job) else None
    except OSError:
        return None


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
    global _worker, _last
    _last = None
    if _worker is not None:
        _worker.close()
        _worker = None
