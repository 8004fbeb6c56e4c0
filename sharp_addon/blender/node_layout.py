"""Lay out a node graph a user can read: each stage a labelled frame, every link left to right.

Frames stand in columns by their depth in the graph of frames (a frame's column is one right of
the frames feeding it; frames of one column are stacked top to bottom), and inside a frame the
nodes stand in columns by their depth among the frame's own links, stacked without overlap by an
estimated height (``estimated_size``: ``node.dimensions`` is 0 until the editor draws). Nothing
here knows what the graph computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import bpy

HEADER_HEIGHT = 30.0  # estimated heights (px at UI scale 1), rough upper bounds of what the editor draws
SOCKET_HEIGHT = 22.0
PROPERTY_HEIGHT = 30.0
NODE_GAP = (60.0, 30.0)  # between columns, between nodes of a column
FRAME_GAP = 80.0  # between frames
FRAME_MARGIN = 30.0  # from a frame's edge to its nodes
FRAME_LABEL_HEIGHT = 40.0  # above a frame's nodes, for its label
_BASE_NODE_PROPERTIES = frozenset(p.identifier for p in bpy.types.Node.bl_rna.properties)
_VECTOR_SOCKETS = ("VECTOR", "ROTATION")  # unlinked, these show one row per component under the label

Stage = tuple[Any, list[Any]]  # a frame and the nodes it holds, in creation order
FrameLayout = tuple[list[tuple[float, float]], float, float]  # node offsets from the top-left, width, height


def _visible(socket: Any) -> bool:
    return bool(socket.enabled and not socket.hide)


def estimated_size(node: Any) -> tuple[float, float]:
    """(width, height) of a node as the editor draws it, height estimated from its visible sockets
    and its own properties (each shown as a row, a rough upper bound)."""
    rows = sum(1 for s in node.outputs if _visible(s))
    for s in node.inputs:
        if _visible(s):
            rows += 4 if s.type in _VECTOR_SOCKETS and not s.is_linked and not s.hide_value else 1
    properties = sum(1 for p in node.bl_rna.properties if p.identifier not in _BASE_NODE_PROPERTIES
                     and not p.is_readonly)
    return float(node.width), HEADER_HEIGHT + SOCKET_HEIGHT * rows + PROPERTY_HEIGHT * properties


def absolute_location(node: Any) -> tuple[float, float]:
    """A node's top-left corner in the editor: ``location`` is relative to its frame once parented
    (4.2, 5.0 and 5.2 alike); ``location_absolute`` says so directly where it exists (4.4+)."""
    x, y = node.location
    parent = node.parent
    if parent is not None:
        px, py = absolute_location(parent)
        x, y = x + px, y + py
    return float(x), float(y)


def _set_absolute_location(node: Any, x: float, y: float) -> None:
    if hasattr(node, "location_absolute"):
        node.location_absolute = (x, y)
    else:
        px, py = absolute_location(node.parent) if node.parent is not None else (0.0, 0.0)
        node.location = (x - px, y - py)


def arrange_in_frames(tree: Any, stages: Sequence[Stage]) -> None:
    """Frames in columns by their depth among frames, nodes in columns by their depth inside their
    frame, top-aligned and stacked by estimated height; then each node is parented to its frame.

    ``stages`` holds every node of ``tree`` but the frames, each node in exactly one stage."""
    frame_columns, inner = _frame_columns(tree, stages)
    layouts = [_layout_frame(nodes, inner) for _, nodes in stages]
    lefts, _ = _column_lefts(frame_columns, [width for _, width, _ in layouts], 0.0, FRAME_GAP)
    tops = dict.fromkeys(lefts, 0.0)
    for (frame, nodes), (offsets, width, height), column in zip(stages, layouts, frame_columns):
        left, top = lefts[column], tops[column]
        tops[column] = top - height - FRAME_GAP
        frame.location = (left, top)
        frame.width, frame.height = width, height  # the editor refits them (shrink) to what it draws
        for node, (dx, dy) in zip(nodes, offsets):
            node.parent = frame
            _set_absolute_location(node, left + dx, top + dy)


def _frame_columns(tree: Any, stages: Sequence[Stage]) -> tuple[list[int], dict[int, list[Any]]]:
    """Each frame's column, and for each node (by pointer) the nodes of its own frame that feed it."""
    owner = {node.as_pointer(): i for i, (_, nodes) in enumerate(stages) for node in nodes}
    inner: dict[int, list[Any]] = {}  # node -> the nodes of its own frame that feed it
    outer: list[set[int]] = [set() for _ in stages]  # frame -> the frames that feed it
    for link in tree.links:
        source, target = owner[link.from_node.as_pointer()], owner[link.to_node.as_pointer()]
        if source == target:
            inner.setdefault(link.to_node.as_pointer(), []).append(link.from_node)
        else:
            outer[target].add(source)
    return _depths(len(stages), lambda i: outer[i]), inner


def _depths(count: int, preceding: Callable[[int], Any]) -> list[int]:
    """Each item's column: 0 without predecessors, else one more than its deepest predecessor."""
    depth: dict[int, int] = {}
    visiting: set[int] = set()

    def visit(i: int) -> int:
        if i not in depth:
            if i in visiting:
                raise ValueError("the stages feed each other in a cycle; they cannot read left to right")
            visiting.add(i)
            depth[i] = 1 + max((visit(j) for j in preceding(i)), default=-1)
            visiting.discard(i)
        return depth[i]

    return [visit(i) for i in range(count)]


def _column_lefts(columns: list[int], widths: list[float], start: float, gap: float) -> tuple[dict[int, float], float]:
    """Left edge of each column (as wide as its widest item, ``gap`` apart from ``start``) and the right
    edge of the last."""
    column_widths: dict[int, float] = {}
    for column, width in zip(columns, widths):
        column_widths[column] = max(column_widths.get(column, 0.0), width)
    lefts, x = {}, start
    for column in sorted(column_widths):
        lefts[column], x = x, x + column_widths[column] + gap
    return lefts, x - gap


def _node_columns(nodes: list[Any], inner: dict[int, list[Any]]) -> list[int]:
    """A node's column is one right of the frame's nodes feeding it; a node fed only from outside
    the frame stands one left of its leftmost consumer in the frame (so constants sit by their use)."""
    index = {node.as_pointer(): i for i, node in enumerate(nodes)}
    feeders = [[index[f.as_pointer()] for f in inner.get(node.as_pointer(), [])] for node in nodes]
    columns = _depths(len(nodes), lambda i: feeders[i])
    consumers: list[list[int]] = [[] for _ in nodes]
    for i, sources in enumerate(feeders):
        for j in sources:
            consumers[j].append(i)
    for i in range(len(nodes)):
        if not feeders[i] and consumers[i]:
            columns[i] = min(columns[j] for j in consumers[i]) - 1
    return columns


def _layout_frame(nodes: list[Any], inner: dict[int, list[Any]]) -> FrameLayout:
    """Offsets of ``nodes`` from their frame's top-left corner, and the frame's width and height."""
    columns = _node_columns(nodes, inner)
    sizes = [estimated_size(node) for node in nodes]
    lefts, right = _column_lefts(columns, [width for width, _ in sizes], FRAME_MARGIN, NODE_GAP[0])
    next_tops = dict.fromkeys(lefts, -FRAME_LABEL_HEIGHT)
    offsets, bottom = [], 0.0
    for column, (_, height) in zip(columns, sizes):
        top = next_tops[column]
        offsets.append((lefts[column], top))
        next_tops[column] = top - height - NODE_GAP[1]
        bottom = min(bottom, top - height)
    return offsets, right + FRAME_MARGIN, FRAME_MARGIN - bottom
