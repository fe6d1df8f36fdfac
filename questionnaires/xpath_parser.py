"""Tokenizer and parser for XLSForm expressions: XPath 1.0 expressions plus ``${name}`` references.

Part of the expression language (`questionnaires.expressions` is the public entry point). `parse_ast`
turns source text into a small tree of frozen nodes; it knows the grammar, not the functions.

Grammar (XPath 1.0 §3, https://www.w3.org/TR/1999/REC-xpath-19991116/, restricted to what XLSForm
authors write), loosest binding first::

    or  <  and  <  = !=  <  < <= > >=  <  + -  <  * div mod  <  unary -  <  |

Operands: numbers (``12``, ``0.5``, ``.5``), string literals in ``'…'`` or ``"…"``, ``${name}``,
function calls ``name(args)`` (including prefixed names like ``jr:choice-name``), ``.`` (the current
node), ``..`` (only inside ``position(..)``, checked by the compiler) and bare names such as ``cf`` or
``name`` (a column of the choices sheet, for ``choice_filter``). Location paths (``/data/q``,
``./q``, ``${rep}/q``; but ``../q`` and ``current()/../q`` are read as ``${q}``), predicates (``[…]``), ``@attr``, ``$var`` and ``*`` tests are refused with
a message saying what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from questionnaires.xpath_values import ExpressionError


# ---------------------------------------------------------------------------------------------- AST
@dataclass(frozen=True, slots=True)
class Literal:
    """A number (``float``) or string (``str``) literal."""

    value: str | float
    pos: int


@dataclass(frozen=True, slots=True)
class Ref:
    """``${name}``."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Current:
    """``.``: the node being validated or calculated."""

    pos: int


@dataclass(frozen=True, slots=True)
class Parent:
    """``..``: the parent of the current node (only meaningful in ``position(..)``)."""

    pos: int


@dataclass(frozen=True, slots=True)
class Column:
    """A bare name such as ``cf``: a column of the choice row being filtered (``choice_filter``)."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call ``name(args…)``."""

    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right`` with op one of or, and, =, !=, <, <=, >, >=, +, -, *, div, mod, |."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Negate:
    """Unary minus."""

    operand: Node
    pos: int


Node = Literal | Ref | Current | Parent | Column | Call | Binary | Negate

# -------------------------------------------------------------------------------------------- tokens
_NAME = r"[^\W\d][\w.\-]*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>[ \t\r\n]+)
  | (?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<ref>\$\{{[^}}]*\}})
  | (?P<op>!=|<=|>=|//|::|\.\.|[=<>+\-*|/()\[\],.@$])
  | (?P<name>{_NAME}(?::{_NAME})?)
    """,
    re.VERBOSE,
)
REF_NAME = re.compile(_NAME)
_OPERATOR_NAMES = frozenset({"and", "or", "div", "mod"})
# After these tokens a name / '*' is an operand, not an operator (XPath 1.0 §3.7 disambiguation).
_OPERAND_EXPECTED_AFTER = frozenset(
    {"@", "$", "::", "(", "[", ",", "and", "or", "div", "mod", "/", "//", "|", "+", "-", "=", "!=", "<",
     "<=", ">", ">=", "*"}
)
_NODE_TYPES = frozenset({"node", "text", "comment", "processing-instruction"})
_CURLY_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00b4\u0060"

_BINARY_POWER: dict[str, int] = {
    "or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "div": 6, "mod": 6,
}


@dataclass(frozen=True, slots=True)
class Token:
    """``kind`` is num, str, ref, op, name or end; ``text`` the token text (for ref: the name)."""

    kind: str
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens (ending with an ``end`` token). Raises ExpressionError."""
    tokens: list[Token] = []
    pos = 0
    n = len(source)
    match = _TOKEN.match
    while pos < n:
        m = match(source, pos)
        if m is None:
            raise ExpressionError(_bad_char_message(source, pos), source, pos)
        kind = m.lastgroup
        text = m.group()
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "ref":
            inner = text[2:-1]
            if "#" in inner and inner.startswith("last-saved"):
                raise ExpressionError(
                    f"{text} (last-saved) is not supported; refer to an answer of this submission",
                    source, pos,
                )
            if not REF_NAME.fullmatch(inner):
                raise ExpressionError(
                    f"{text} is not a valid reference: write ${{name}} with the question's name "
                    "(letters, digits, _ - . ; no spaces)",
                    source, pos,
                )
            text = inner
        elif kind == "op" and text == "$" and source.startswith("${", pos):
            raise ExpressionError("${ is never closed with }", source, pos)
        if kind == "op" or kind == "name":
            prev = tokens[-1] if tokens else None
            after_operand = prev is not None and not (
                prev.kind == "op" and prev.text in _OPERAND_EXPECTED_AFTER
            )
            if kind == "name" and text in _OPERATOR_NAMES and after_operand:
                kind = "op"
            elif kind == "name" and after_operand:
                if text.lower() in _OPERATOR_NAMES:
                    message = f"operators are lower case: write {text.lower()!r}, not {text!r}"
                elif prev is not None and prev.kind == "num" and text[0] in "eE":
                    message = "numbers are written without an exponent (1e5 -> 100000)"
                else:
                    message = f"unexpected name {text!r} after a value: is an operator (and, or, =, +…) missing?"
                raise ExpressionError(message, source, pos)
            elif kind == "op" and text == "=" and source.startswith("==", pos):
                raise ExpressionError("compare with a single '=' (not '==')", source, pos)
            elif kind == "op" and text == "<" and source.startswith("<>", pos):
                raise ExpressionError("write != for 'not equal' (not '<>')", source, pos)
            elif kind == "op" and text == "*" and not after_operand:
                raise ExpressionError("'*' here would be a node test; not supported", source, pos)
        tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", n))
    return tokens


def _bad_char_message(source: str, pos: int) -> str:
    ch = source[pos]
    if ch in "'\"":
        return f"string literal starting with {ch} is never closed"
    if ch in _CURLY_QUOTES:
        return f"curly quote {ch} is not allowed: write straight quotes ' or \" (spreadsheet autocorrect?)"
    if source.startswith("${", pos):
        return "${ is never closed with }"
    if ch in "\u00a0\u2007\u202f\u200b\ufeff":
        return f"invisible non-breaking/zero-width space (U+{ord(ch):04X}): replace it with a normal space"
    if ch == "!":
        return "'!' must be followed by '=' (write != or not(...))"
    if ch == "&":
        return "write 'and' instead of '&' or '&&'"
    return f"unexpected character {ch!r}"


# -------------------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0

    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, self.source, pos)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect_op(self, text: str, what: str) -> Token:
        tok = self.next()
        if tok.kind != "op" or tok.text != text:
            raise self.error(f"expected {what} but found {_describe(tok)}", tok.pos)
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("the expression is empty", 0)
        node = self.expression(0)
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "op" and tok.text == ")":
                raise self.error("')' without a matching '('", tok.pos)
            raise self.error(f"unexpected {_describe(tok)}: is an operator missing?", tok.pos)
        return node

    def expression(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok.kind != "op":
                return left
            power = _BINARY_POWER.get(tok.text)
            if power is None or power <= min_power:
                return left
            self.i += 1
            right = self.expression(power)
            left = Binary(tok.text, left, right, tok.pos)

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-":
            self.i += 1
            return Negate(self.unary(), tok.pos)
        return self.union()

    def union(self) -> Node:
        left = self.path()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text == "|":
                self.i += 1
                left = Binary("|", left, self.path(), tok.pos)
            else:
                return left

    def path(self) -> Node:
        node = self.primary()
        tok = self.peek()
        if tok.kind == "op":
            if tok.text == "[":
                raise self.error(
                    "predicates [...] are not supported: use indexed-repeat(), count() or a calculate",
                    tok.pos,
                )
            if tok.text == "/" and (
                isinstance(node, Parent) or (isinstance(node, Call) and node.name == "current" and not node.args)
            ):
                return self.relative_path(node)
            if tok.text in ("/", "//"):
                if isinstance(node, Call) and node.name == "instance":
                    raise self.error(
                        "instance() lookups are not supported; use select_one ... with choice_filter",
                        node.pos,
                    )
                raise self.error(
                    "paths like ${a}/b or ./b are not supported: refer to the question as ${name}",
                    tok.pos,
                )
        return node

    def relative_path(self, start: Node) -> Node:
        """``../name``, ``../../name``, ``current()/../name``: read as ``${name}`` (XLSForm names are
        unique in a form, so the last step names the question)."""
        ups = 1 if isinstance(start, Parent) else 0
        while True:
            slash = self.next()  # '/'
            tok = self.next()
            if tok.kind == "op" and tok.text == "..":
                ups += 1
                following = self.peek()
                if following.kind == "op" and following.text == "/":
                    continue
                raise self.error("a path must end with a question name, like ../name", tok.pos)
            if tok.kind == "name" and ups:
                following = self.peek()
                if following.kind == "op" and following.text in ("/", "//", "[", "("):
                    raise self.error(
                        "only paths like ../name are supported: refer to the question as ${name}",
                        following.pos,
                    )
                return Ref(tok.text, start.pos)
            raise self.error(
                "only paths like ../name are supported: refer to the question as ${name}",
                tok.pos if tok.kind != "end" else slash.pos,
            )

    def primary(self) -> Node:
        tok = self.next()
        kind = tok.kind
        if kind == "num":
            return Literal(float(tok.text), tok.pos)
        if kind == "str":
            return Literal(tok.text[1:-1], tok.pos)
        if kind == "ref":
            return Ref(tok.text, tok.pos)
        if kind == "name":
            following = self.peek()
            if following.kind == "op" and following.text == "(":
                return self.call(tok)
            if following.kind == "op" and following.text == "::":
                raise self.error(f"axis {tok.text}:: is not supported", tok.pos)
            return Column(tok.text, tok.pos)
        if kind == "op":
            text = tok.text
            if text == "(":
                inner = self.expression(0)
                self.expect_op(")", "')'")
                return inner
            if text == ".":
                return Current(tok.pos)
            if text == "..":
                return Parent(tok.pos)
            if text in ("/", "//"):
                raise self.error(
                    "absolute paths like /data/q are not supported: refer to questions as ${q}", tok.pos
                )
            if text == "$":
                raise self.error("variables ($x) are not supported: refer to questions as ${x}", tok.pos)
            if text == "@":
                raise self.error("attributes (@x) are not supported", tok.pos)
        if kind == "end":
            raise self.error("the expression ends too early: a value is missing", tok.pos)
        raise self.error(
            f"expected a value (number, 'text', ${{name}}, function call) but found {_describe(tok)}",
            tok.pos,
        )

    def call(self, name_tok: Token) -> Node:
        name = name_tok.text
        if name in _NODE_TYPES:
            raise self.error(f"node test {name}() is not supported", name_tok.pos)
        self.i += 1  # '('
        args: list[Node] = []
        tok = self.peek()
        if tok.kind == "op" and tok.text == ")":
            self.i += 1
            return Call(name, (), name_tok.pos)
        while True:
            args.append(self.expression(0))
            tok = self.next()
            if tok.kind == "op" and tok.text == ",":
                continue
            if tok.kind == "op" and tok.text == ")":
                return Call(name, tuple(args), name_tok.pos)
            if tok.kind == "end":
                raise self.error(f"{name}( is never closed with ')'", name_tok.pos)
            raise self.error(
                f"expected ',' or ')' in the arguments of {name}() but found {_describe(tok)}", tok.pos
            )


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.kind == "ref":
        return f"${{{tok.text}}}"
    if tok.kind == "str":
        return f"the text {tok.text}"
    return repr(tok.text)


def parse_ast(source: str) -> Node:
    """Parse ``source`` into an AST `Node`. Raises ExpressionError (with position) on a syntax error."""
    return _Parser(source).parse()
