"""The typed expression tree: immutable, hashable nodes (equal subtrees compare and hash equal, which is what
common sub-expression elimination keys on), and the error every stage of the engine raises.

Binary operators are plain calls of Qlib's operator names (``$a + $b`` is ``Add($a, $b)``), so the tree has
three node kinds only. Source positions are carried for error messages but take no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Reach reported for expressions that read all history (expanding windows, Ref(x, 0), ...).
UNBOUNDED = 10**9


class ExpressionError(ValueError):
    """A bad expression: the message names the feature set, the column, the 0-based position and the reason."""

    def __init__(self, reason: str, *, text: str | None = None, position: int | None = None, set_name: str = "",
                 column: str = "") -> None:  # fmt: skip
        self.reason = reason
        self.text = text
        self.position = position
        self.set_name = set_name
        self.column = column
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.set_name:
            where.append(f"feature set {self.set_name!r}")
        if self.column:
            where.append(f"column {self.column!r}")
        head = ", ".join(where) + ": " if where else ""
        tail = ""
        if self.position is not None:
            tail = f" at position {self.position}"
        if self.text is not None:
            tail += f" in {self.text!r}"
        return f"{head}{self.reason}{tail}"


@dataclass(frozen=True)
class Field:
    """``$name``: a bars column, read as float32 like Qlib's binary fields."""

    name: str
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True)
class Literal:
    """A number as Python would read it: ``is_int`` keeps ``5`` (a window) apart from ``5.0`` (not one)."""

    value: float
    is_int: bool
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return str(int(self.value)) if self.is_int else repr(float(self.value))


@dataclass(frozen=True)
class Call:
    """``Op(arg, ...)``: one of Qlib's operators (or an engine-internal one whose name starts with ``_``)."""

    op: str
    args: tuple[Node, ...]
    pos: int = field(default=0, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.op}({','.join(str(a) for a in self.args)})"


Node = Field | Literal | Call


def int_arg(node: Call, i: int) -> int:
    """The integer literal argument ``i`` of a validated call (windows, shifts)."""
    arg = node.args[i]
    assert isinstance(arg, Literal)
    return int(arg.value)


def walk(node: Node):
    """Every node of the tree, children before parents (a node shared twice is yielded twice)."""
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    yield node


def fields(node: Node) -> frozenset[str]:
    """The ``$field`` names the expression reads (without ``$``)."""
    return frozenset(n.name for n in walk(node) if isinstance(n, Field))
