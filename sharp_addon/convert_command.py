"""``sharp info`` and ``sharp convert``: any splat file described, or rewritten in any other format.

No bpy. The format of each file follows its extension (``formats.format_for``) or ``--to``; an
extension that names no format is an error, never a PLY under another name. What the target
format cannot keep (SH beyond its degree, the photo's camera) is said on stderr as a warning.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import formats
from .errors import PLYError, SharpError, SplatFileError
from .files import path_kind
from .gaussians import Gaussians
from .ply import LAYOUTS


def add_parsers(commands: Any, fraction: Callable[[str], float]) -> None:
    """Add ``info`` and ``convert`` to the command line's subcommands (``cli.build_parser``)."""
    names = ", ".join(formats.NAMES)
    p = commands.add_parser("info", help="describe a splat file (any format we read)")
    p.add_argument("file", help=f"a splat file: {_extensions()}")
    p.set_defaults(run=_info)

    p = commands.add_parser(
        "convert", help="rewrite a splat file in another format or layout, optionally filtered",
        description=f"Read any splat file ({_extensions()}) and write it in the format its output's extension "
        f"names (or --to: {names}). The output is replaced atomically.")
    p.add_argument("input", help="the splat file to read")
    p.add_argument("output", nargs="?", help="the splat file to write (its extension gives the format)")
    p.add_argument("--web", metavar="DIR", help="also (or instead) write a web page that shows the splats: DIR gets "
                   "index.html, the scene and a web splat viewer; serve it from any static web server")
    p.add_argument("--to", choices=formats.NAMES, metavar="FORMAT",
                   help=f"the output's format whatever its extension ({names})")
    p.add_argument("--layout", choices=LAYOUTS, default="3dgs",
                   help="for PLY output: '3dgs', vertex element only, for tools that reject ml-sharp's extra "
                   "elements (default); 'sharp': ml-sharp's layout")
    p.add_argument("--spz-version", type=int, choices=(2, 3, 4), default=3,
                   help="for SPZ output: 3 (gzip, default: what web viewers read), 4 (zstd) or 2")
    p.add_argument("--min-opacity", type=fraction, default=0.0, help="drop splats less opaque than this (0 to 1)")
    p.add_argument("--keep-fraction", type=fraction, default=1.0,
                   help="keep this fraction of the splats, the same ones every time")
    p.set_defaults(run=_convert)


def _extensions() -> str:
    return ", ".join(ext for f in formats.FORMATS for ext in f.extensions)


def _info(args: argparse.Namespace) -> int:
    fmt = formats.format_for(args.file)
    g = formats.read_splats(args.file)
    lo, hi = g.means.min(axis=0), g.means.max(axis=0)
    print(f"{args.file}: {len(g)} Gaussians, SH degree {g.sh_degree}, colour encoding {g.color_space} ({fmt.label})")
    if g.focal_px is not None and g.image_size is not None:
        print(f"  photo: {g.image_size[0]} x {g.image_size[1]} px, focal length {g.focal_px:.2f} px")
    print(f"  means: x {lo[0]:.3f} .. {hi[0]:.3f}, y {lo[1]:.3f} .. {hi[1]:.3f}, z {lo[2]:.3f} .. {hi[2]:.3f} m")
    print(f"  scales: median {float(np.median(g.scales)):.4g} m; opacity: median {float(np.median(g.opacities)):.3f}")
    return 0


def _target_format(output: str, name: str | None) -> formats.SplatFormat:
    """The output's format; a folder given as the output is left to the writer's check, which says
    to give a file's name (the default format is PLY, as before other formats existed)."""
    try:
        return formats.format_for(output, name)
    except SplatFileError:
        if output.endswith(("/", os.sep)) or path_kind(output) == "folder":
            return formats.format_named("ply")
        raise


def _convert(args: argparse.Namespace) -> int:
    if not args.output and not args.web:
        raise SharpError("convert needs an output file, --web DIR, or both")
    target = _target_format(args.output, args.to) if args.output else None  # an unknown extension fails first
    g = formats.read_splats(args.input)
    options = _options(args, g, target) if target else {}  # before filtering: a refusal is said first
    n = len(g)
    if args.min_opacity > 0:
        g = g.drop_transparent(args.min_opacity)
    if args.keep_fraction < 1:
        g = g.decimate(args.keep_fraction)
    if len(g) == 0:
        raise SharpError(f"no Gaussians left after filtering the {n} of '{args.input}'; nothing written")
    if target is not None:
        _write(args, g, n, target, options)
    if args.web:
        from .web_page import write_web_page

        page = write_web_page(g, args.web, title=Path(args.input).stem)
        print(f"wrote {page}: a web page of {len(g)} Gaussians (serve its folder, e.g. python -m http.server)")
    return 0


def _options(args: argparse.Namespace, g: Gaussians, target: formats.SplatFormat) -> dict[str, Any]:
    """The target format's writer options from the arguments; refuses what the target cannot record."""
    if target.name == "ply":
        if args.layout == "sharp" and (g.focal_px is None or g.image_size is None):
            raise PLYError.about(args.input, "has no photo camera (focal length and size), which the ml-sharp "
                                 "layout records; use --layout 3dgs")
        return {"layout": args.layout}
    return {"version": args.spz_version} if target.name == "spz" else {}


def _write(args: argparse.Namespace, g: Gaussians, n: int, target: formats.SplatFormat,
           options: dict[str, Any]) -> None:
    for dropped in formats.what_is_dropped(g, target):
        print(f"warning: {args.output} ({target.label}) does not keep {dropped}", file=sys.stderr)
    formats.write_splats(g, args.output, target.name, **options)
    what = f"layout {args.layout}" if target.name == "ply" else target.label
    print(f"wrote {args.output}: {len(g)} of {n} Gaussians, {what}")
