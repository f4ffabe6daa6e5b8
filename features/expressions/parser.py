"""Tokenizer and recursive-descent parser for Qlib's expression text.

Qlib turns ``$close`` into ``Feature("close")`` and ``Mean(`` into ``Operators.Mean(`` and then evaluates the text
as Python, so precedence is Python's (loosest first): comparisons, ``|``, ``&``, ``+ -``, ``* /``, unary ``-``,
``**``. A consequence kept here: ``$a > 0 & $b > 0`` groups as ``$a > (0 & $b) > 0``; Python would chain that
comparison, which Qlib's expressions cannot do, so chained comparisons are an error (write parentheses).
Number-with-number arithmetic is folded as Python folds it. Unary minus on a series (which Qlib's Expression does
not define) is read as ``0 - x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from features.expressions.nodes import Call, ExpressionError, Field, Literal, Node
from features.expressions.operators import make_call

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
      | (?P<pfield>\$\$)
      | (?P<field>\$[\w\u3001\uff1a\uff08\uff09]*)
      | (?P<name>[^\W\d]\w*)
      | (?P<op>\*\*|>=|<=|==|!=|[-+*/><&|(),])
    """,
    re.VERBOSE,
)
_COMPARE = {">": "Gt", ">=": "Ge", "<": "Lt", "<=": "Le", "==": "Eq", "!=": "Ne"}


@dataclass(frozen=True)
class Token:
    kind: str  # num, field, name, op, end
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise ExpressionError(f"unexpected character {text[i]!r}", text=text, position=i)
        kind = m.lastgroup
        assert kind is not None
        if kind == "pfield":
            raise ExpressionError("point-in-time fields ($$name) are not supported", text=text, position=i)
        if kind == "field" and len(m.group()) == 1:
            raise ExpressionError("'$' must be followed by a field name", text=text, position=i)
        if kind != "ws":
            tokens.append(Token(kind, m.group(), i))
        i = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, reason: str, pos: int | None = None) -> ExpressionError:
        return ExpressionError(reason, text=self.text, position=self.tok.pos if pos is None else pos)

    def accept(self, *ops: str) -> Token | None:
        if self.tok.kind == "op" and self.tok.text in ops:
            tok = self.tok
            self.i += 1
            return tok
        return None

    def expect(self, op: str) -> Token:
        tok = self.accept(op)
        if tok is None:
            found = "the end of the expression" if self.tok.kind == "end" else repr(self.tok.text)
            raise self.error(f"expected {op!r}, found {found}")
        return tok

    def call(self, name: str, args: list[Node], pos: int) -> Node:
        return make_call(name, args, pos, self.text)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("empty expression")
        node = self.comparison()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return node

    def comparison(self) -> Node:
        left = self.bit_or()
        tok = self.accept(*_COMPARE)
        if tok is None:
            return left
        node = self.call(_COMPARE[tok.text], [left, self.bit_or()], tok.pos)
        if self.tok.kind == "op" and self.tok.text in _COMPARE:
            raise self.error("chained comparisons are not supported; add parentheses")
        return node

    def bit_or(self) -> Node:
        node = self.bit_and()
        while tok := self.accept("|"):
            node = self.call("Or", [node, self.bit_and()], tok.pos)
        return node

    def bit_and(self) -> Node:
        node = self.arith()
        while tok := self.accept("&"):
            node = self.call("And", [node, self.arith()], tok.pos)
        return node

    def arith(self) -> Node:
        node = self.term()
        while tok := self.accept("+", "-"):
            node = self.call("Add" if tok.text == "+" else "Sub", [node, self.term()], tok.pos)
        return node

    def term(self) -> Node:
        node = self.unary()
        while tok := self.accept("*", "/"):
            node = self.call("Mul" if tok.text == "*" else "Div", [node, self.unary()], tok.pos)
        return node

    def unary(self) -> Node:
        if tok := self.accept("-"):
            operand = self.unary()
            if isinstance(operand, Literal):
                return Literal(-operand.value, operand.is_int, tok.pos)
            return self.call("Sub", [Literal(0, True, tok.pos), operand], tok.pos)
        if self.accept("+"):
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if tok := self.accept("**"):
            return self.call("Power", [base, self.unary()], tok.pos)
        return base

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            is_int = not any(c in tok.text for c in ".eE")
            return Literal(int(tok.text) if is_int else float(tok.text), is_int, tok.pos)
        if tok.kind == "field":
            self.i += 1
            return Field(tok.text[1:], tok.pos)
        if tok.kind == "name":
            self.i += 1
            if not (self.tok.kind == "op" and self.tok.text == "("):
                raise self.error(f"unknown name {tok.text!r} (fields are written ${tok.text}, operators Name(...))",
                                 tok.pos)  # fmt: skip
            self.i += 1
            args: list[Node] = []
            if not self.accept(")"):
                args.append(self.comparison())
                while self.accept(","):
                    args.append(self.comparison())
                self.expect(")")
            return self.call(tok.text, args, tok.pos)
        if self.accept("("):
            node = self.comparison()
            self.expect(")")
            return node
        found = "the end of the expression" if tok.kind == "end" else repr(tok.text)
        raise self.error(f"expected a field, a number, an operator or '(', found {found}")


def parse(text: str, *, set_name: str = "", column: str = "") -> Node:
    """The typed tree of a Qlib expression; ``ExpressionError`` names ``set_name``, ``column`` and the position."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}", set_name=set_name,
                              column=column)  # fmt: skip
    try:
        node = _Parser(text).parse()
    except ExpressionError as exc:
        raise ExpressionError(exc.reason, text=text, position=exc.position, set_name=set_name,
                              column=column) from None  # fmt: skip
    if isinstance(node, Literal):
        raise ExpressionError("the expression is a constant; it must read at least one $field", text=text,
                              position=0, set_name=set_name, column=column)  # fmt: skip
    return node


__all__ = ["Call", "Field", "Literal", "Node", "parse", "tokenize"]
