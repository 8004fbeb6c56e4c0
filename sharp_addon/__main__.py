"""``python -m sharp_addon ...``: the command line outside Blender (see ``cli``)."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
