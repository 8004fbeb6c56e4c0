#!/usr/bin/env python3
"""A stand-in for the ``blender`` executable where Blender is the ``bpy`` module (tests, CI).

    python tests/farm/blender_stand_in.py [-b] [-y] -c sharp ARGS...
    python tests/farm/blender_stand_in.py [-b] [-y] --python-expr EXPR -- ARGS...

Does what a worker's Blender with the extension installed does with these arguments: a fresh
Blender with its own user folder and factory settings, the extension installed from the working
tree and enabled, then ``-c sharp`` runs the extension's registered command (``cli_command``), and
``--python-expr`` runs the expression with ``sys.argv`` as Blender's (everything, ``--`` included).
The exit status is the command's (or the expression's ``sys.exit``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = {"-b", "--background", "-y", "--enable-autoexec", "--factory-startup"}


def main(argv: list[str]) -> int:
    args = list(argv)
    while args and args[0] in FLAGS:
        args.pop(0)
    if len(args) < 2 or args[0] not in ("-c", "--command", "--python-expr"):
        print(f"blender stand-in: expected -c COMMAND ... or --python-expr EXPR; got {argv}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from tests import conftest  # gives this process its own Blender user folder, before bpy is imported

    # isort: split
    import bpy

    # isort: split
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
    conftest.install_working_tree_as_extension(Path(repo.directory))
    addon_utils.enable(conftest.ADDON_MODULE, default_set=True, handle_error=conftest._raise)
    try:
        if args[0] == "--python-expr":
            sys.argv = ["blender", *argv]
            try:
                exec(compile(args[1], "<python-expr>", "exec"), {"__name__": "__main__"})
            except SystemExit as e:
                return int(e.code or 0) if not isinstance(e.code, str) else 1
            return 0
        if args[1] != "sharp":
            print(f"blender stand-in: unknown command '{args[1]}'", file=sys.stderr)
            return 2
        return int(sys.modules[conftest.ADDON_MODULE + ".blender"].cli_command(args[2:]))
    finally:
        addon_utils.disable(conftest.ADDON_MODULE, default_set=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
