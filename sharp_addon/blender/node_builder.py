"""Build a node tree in a few words: nodes made inside labelled stages, linked by socket name.

Sockets are found by name, never by index (indices move between Blender versions). Every node is
made inside a ``stage``, which becomes a frame; ``arrange`` lays the finished graph out
(``node_layout``). Nothing here knows what the graph computes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy

from . import node_layout

SocketKey = str | tuple[str, int]  # a socket's name, or (name, n) for the n-th enabled socket of that name


class NodeBuilder:
    """Terse node creation and linking by socket name, every node made inside a ``stage`` frame;
    ``arrange`` lays the graph out once it is complete."""

    def __init__(self, tree: Any) -> None:
        self.tree: Any = tree
        self.stages: list[node_layout.Stage] = []  # (frame, its nodes in creation order)
        self._in_stage = False

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Nodes made inside go into a new frame labelled ``label``."""
        frame = self.tree.nodes.new("NodeFrame")
        frame.name = frame.label = label
        self.stages.append((frame, []))
        self._in_stage = True
        try:
            yield
        finally:
            self._in_stage = False

    def node(self, idname: str, inputs: dict[SocketKey, Any] | None = None, label: str = "", **props: Any) -> Any:
        """A new node of type ``idname`` in the current stage, its ``inputs`` linked or set, ``props`` set."""
        assert self._in_stage, "every node is made inside a stage (its frame)"
        node = self.tree.nodes.new(idname)
        self.stages[-1][1].append(node)
        if label:
            node.label = label
            node.width = max(node.width, min(260.0, 7.0 * len(label) + 40.0))  # the header shows it whole
        for prop, value in props.items():
            setattr(node, prop, value)
        for key, value in (inputs or {}).items():
            self.feed(node, key, value)
        return node

    @staticmethod
    def socket(sockets: Any, key: SocketKey) -> Any:
        """The socket ``name`` or the n-th socket ``(name, n)`` of that name among the enabled ones
        (several nodes keep one hidden socket per data type, and 5.2 has only the active one)."""
        name, nth = (key, 0) if isinstance(key, str) else key
        enabled = [s for s in sockets if s.name == name and s.enabled]
        if nth < len(enabled):
            return enabled[nth]
        if nth == 0:
            return sockets[name]
        raise KeyError(f"no enabled socket {key!r}")

    def feed(self, node: Any, key: SocketKey, value: Any) -> None:
        """Link a socket into an input, or set the input's value."""
        socket = self.socket(node.inputs, key)
        if isinstance(value, bpy.types.NodeSocket):
            self.tree.links.new(value, socket)
        else:
            socket.default_value = value

    def link(self, output: Any, node: Any, key: SocketKey) -> None:
        self.tree.links.new(output, self.socket(node.inputs, key))

    def out(self, node: Any, name: str) -> bpy.types.NodeSocket:
        return self.socket(node.outputs, name)

    # -- arithmetic

    def math(self, operation: str, a: Any, b: Any = None, label: str = "") -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeMath", {"Value": a}, label, operation=operation)
        if b is not None:
            self.feed(node, ("Value", 1), b)
        return self.out(node, "Value")

    def vmath(self, operation: str, a: Any, b: Any = None, scale: Any = None, label: str = "") -> bpy.types.NodeSocket:
        node = self.node("ShaderNodeVectorMath", {"Vector": a}, label, operation=operation)
        if b is not None:
            self.feed(node, ("Vector", 1), b)
        if scale is not None:
            self.feed(node, "Scale", scale)
        return self.out(node, "Value" if operation in ("DOT_PRODUCT", "LENGTH", "DISTANCE") else "Vector")

    # -- logic: the only ways the graphs combine booleans

    def compare(self, a: Any, b: Any, operation: str, data_type: str = "FLOAT", label: str = "") -> Any:
        """``a <operation> b``; vectors compare element-wise (true when every component does)."""
        node = self.node("FunctionNodeCompare", None, label, data_type=data_type, operation=operation)
        if data_type == "VECTOR":
            node.mode = "ELEMENT"
        self.feed(node, "A", a)
        self.feed(node, "B", b)
        return self.out(node, "Result")

    def _boolean(self, operation: str, operands: tuple[Any, ...], label: str) -> Any:
        node = self.node("FunctionNodeBooleanMath", None, label, operation=operation)
        for n, operand in enumerate(operands):
            self.feed(node, ("Boolean", n), operand)
        return self.out(node, "Boolean")

    def and_(self, a: Any, b: Any, label: str = "") -> Any:
        return self._boolean("AND", (a, b), label)

    def or_(self, a: Any, b: Any, label: str = "") -> Any:
        return self._boolean("OR", (a, b), label)

    def not_(self, a: Any, label: str = "") -> Any:
        return self._boolean("NOT", (a,), label)

    # -- layout

    def arrange(self) -> None:
        """Lay the finished graph out, each stage in its frame (``node_layout.arrange_in_frames``)."""
        node_layout.arrange_in_frames(self.tree, self.stages)
