"""Inference and exact renders in a separate Python process, so a host (Blender) never runs torch itself.

No bpy. The host side (``host``: ``InferenceWorker``, each request followed as a ``WorkerJob``)
starts the worker side (``serve``) in a child process and they speak JSON lines (``protocol``);
results travel as files (``results``). Why a process: ``child_process``.

    worker = InferenceWorker()
    gaussians = worker.run(PredictRequest("photo.jpg", "sharp_2572gikvuh.pt"))  # the next run reuses the model
    worker.close()
"""

from .host import InferenceWorker, JobStatus, WorkerJob, check_checkpoint
from .protocol import PredictRequest, RenderRequest
from .results import load_result, save_result

__all__ = ["InferenceWorker", "JobStatus", "PredictRequest", "RenderRequest", "WorkerJob", "check_checkpoint",
           "load_result", "save_result"]
