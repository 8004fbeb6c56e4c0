"""A stand-in for Blender's UILayout, which exists only in a window: it records what a draw function shows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class RecordingLayout:
    """Records every call a draw function makes (``calls``: method, arguments, keywords, whether the part
    of the layout it was made on is enabled); rows, columns and boxes share the record."""

    def __init__(self, calls: list[tuple[str, tuple, dict, bool]] | None = None, enabled: bool = True) -> None:
        self.calls = [] if calls is None else calls
        self.enabled = enabled
        self.active = self.alert = True

    def _child(self, *args: Any, **kwargs: Any) -> RecordingLayout:
        return RecordingLayout(self.calls)

    row = column = box = split = _child

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def draw(*args: Any, **kwargs: Any) -> SimpleNamespace:
            self.calls.append((name, args, kwargs, self.enabled))
            return SimpleNamespace()

        return draw

    def drawn(self, kind: str) -> list[tuple[Any, dict, bool]]:
        """(what, keywords, enabled) of every ``kind`` call: what is the first argument, else the text."""
        return [(args[0] if args else kwargs.get("text"), kwargs, enabled)
                for name, args, kwargs, enabled in self.calls if name == kind]

    @property
    def lines(self) -> list[tuple]:
        """What a user reads, one tuple per call: ("label", text, icon), ("operator", idname, text),
        ("menu", idname, property, text), ("prop", property, its value)."""
        out: list[tuple] = []
        for name, args, kwargs, _ in self.calls:
            if name == "label":
                out.append(("label", kwargs.get("text", args[0] if args else ""), kwargs.get("icon", "NONE")))
            elif name == "operator":
                out.append(("operator", args[0], kwargs.get("text", "")))
            elif name == "operator_menu_enum":
                out.append(("menu", args[0], args[1], kwargs.get("text", "")))
            elif name == "prop":
                out.append(("prop", args[1], getattr(args[0], args[1])))
        return out

    def texts(self) -> str:
        return "\n".join(str(line[1]) + " " + str(line[2]) for line in self.lines)
