#!/usr/bin/env python3
"""The headless Chromium the web page's browser tests run (tests/support/headless_browser.py).

    python3 tools/chromium.py        # print its path, installing it first where this can

Standard library only. The distribution's ``chromium-headless-shell`` (Debian 12: about 96 MB of
packages; WebGL runs on its SwiftShader, no GPU needed). Where it is missing, it is installed with
apt-get when this is root on a Debian-like system (CI, this project's machines); elsewhere
``ensure_chromium`` says how and returns None, and the browser tests skip (fail under CI=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGE = "chromium-headless-shell"
NAMES = (PACKAGE, "chromium", "chromium-browser")  # the tests accept any of them
APT_TIMEOUT_S = 900  # a cold install downloads ~96 MB


def find_chromium() -> str | None:
    """The path of a headless-capable Chromium on PATH, or None."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium(log=print) -> str | None:
    """A Chromium's path, installing ``chromium-headless-shell`` with apt-get when missing and allowed;
    None (having said how to get one) when it cannot be had."""
    found = find_chromium()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        log(f"no headless Chromium: install the package {PACKAGE} (Debian/Ubuntu, as root: "
            f"apt-get install {PACKAGE}) or put chromium on PATH; the web page's browser tests skip without it")
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing {PACKAGE} with apt-get ...")
    for step in ([apt, "install", "-y", "-q", PACKAGE], [apt, "update", "-q"], [apt, "install", "-y", "-q", PACKAGE]):
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"apt-get took over {APT_TIMEOUT_S} s: {' '.join(step[1:])}")
            return None
        if step[1] == "install" and done.returncode == 0:
            break  # a fresh machine may need 'update' first; one that has lists does not
    found = find_chromium()
    if found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        log(f"apt-get could not install {PACKAGE}: " + " | ".join(tail))
    return found


if __name__ == "__main__":
    path = ensure_chromium(lambda message: print(message, file=sys.stderr))
    if path:
        print(path)
    sys.exit(0 if path else 1)
