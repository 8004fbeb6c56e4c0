"""Where inference runs, besides the host's own Python: another Python, or a private GPU runtime.

No bpy, no torch. Two ways to a GPU where the extension's own PyTorch has none:

- **Python for Inference**: any Python 3.10+ with torch runs the worker; ``probe`` says what it
  offers (versions, GPUs) or why it cannot serve.
- **GPU runtime** (Windows and Linux): CUDA PyTorch installed by the host's own pip into a private
  folder that only the worker puts on its path: ``catalogue`` (the builds on offer, the one
  installed), ``pip_output`` (what pip's output says), ``install`` (``RuntimeInstall``, followed by
  polling).
"""

from .catalogue import (
    DEFAULT_RUNTIME,
    MARKER,
    RUNTIMES,
    GpuRuntime,
    InstalledRuntime,
    installed_runtime,
    python_tag,
    read_runtime,
    remove_runtimes,
    runtimes_offered,
    save_probe,
)
from .install import ENV_INDEX, ENV_PIP, ENV_REQUIREMENT, RuntimeInstall, install_command, pip_command
from .pip_output import PipProgress
from .probe import PROBE_MARK, Device, PythonProbe, parse_probe, probe_python

__all__ = ["DEFAULT_RUNTIME", "ENV_INDEX", "ENV_PIP", "ENV_REQUIREMENT", "MARKER", "PROBE_MARK", "RUNTIMES", "Device",
           "GpuRuntime", "InstalledRuntime", "PipProgress", "PythonProbe", "RuntimeInstall", "install_command",
           "installed_runtime", "parse_probe", "pip_command", "probe_python", "python_tag", "read_runtime",
           "remove_runtimes", "runtimes_offered", "save_probe"]
