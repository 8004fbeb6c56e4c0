"""Getting the SHARP weights over HTTP(S): resumable, cancellable, and checked before anything uses them.

No bpy. Four modules, one job each:

- ``http_fetch``: ``fetch(url, target)`` downloads through ``<target>.part`` with resume, retries,
  cancel and progress, and gives the file its name only once it passed the checks;
- ``checks``: ``verify`` / ``verify_file``, the one check for a download and for a file the user
  picks (size, SHA-256, every CRC-32 of the archive, every key and shape where torch is installed);
- ``command``: ``python -m sharp_addon download`` (licence acceptance, progress for people or programs);
- ``process``: ``DownloadProcess``, that command in a child process a host follows without blocking.
"""

from .checks import OFFICIAL, Expected, Installed, expected_for, verify, verify_file
from .command import HostRules, add_parser, command, set_host_rules
from .http_fetch import fetch, part_path
from .process import DownloadProcess

__all__ = ["OFFICIAL", "DownloadProcess", "Expected", "HostRules", "Installed", "add_parser", "command",
           "expected_for", "fetch", "part_path", "set_host_rules", "verify", "verify_file"]
