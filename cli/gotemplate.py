"""Go's text/template, the subset Docker users' scripts use, for ``--format``.

Why our own: the Python packages that claim Go templates on PyPI are 0.0.x wrappers
that compile Go through cgo, unmaintained and slow to load. What scripts write is a
small language: ``{{.Field.Sub}}``, ``{{json .}}``, pipelines (``{{.Name | upper}}``),
``{{range}}``/``{{if}}``/``{{with}}`` with ``{{else}}``, variables (``$``, ``$x :=``),
parenthesised calls, and Go's and Docker's functions (``index``, ``join``, ``split``,
``lower``, ``upper``, ``title``, ``pad``, ``truncate``, ``len``, ``printf``,
``eq``/``ne``/``lt``/``le``/``gt``/``ge``, ``and``/``or``/``not``). Anything else
(``define``, ``template``, ``block``, ``break``...) is one :class:`TemplateError`.

Values are what JSON decodes to: dicts, lists, strings, numbers, booleans, None.
They print as Go prints them (``map[k:v]``, ``[a b]``, ``<no value>`` for a missing
key). A :class:`Record` is a struct: asking it for a field it lacks is an error, as
``docker ps --format '{{.Nope}}'`` is; its callables are methods (``.Label "k"``).

:func:`render` applies Docker's ``--format`` conventions on top (``table``, the
``json`` shorthand, ``\\t`` and ``\\n`` written literally); :func:`tabwrite` is Go's
tabwriter as Docker configures it for tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from layergit.errors import UsageError


class TemplateError(UsageError):
    """A template that does not parse or cannot run on the data: one line, exit 2."""


class Record(dict):
    """A struct for templates: a missing field is an error, not ``<no value>``."""

    type_name = "row"


# --------------------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+|\d+(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<chain>\)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<punct>:=|[()|=,])
""", re.X)


class _Node:
    """The syntax tree's nodes: plain classes, not dataclasses, as defining a dataclass
    costs about a millisecond at import, and every ``--format`` pays the import."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, *values):
        for name, value in zip(self.__slots__, values, strict=False):
            setattr(self, name, value)


class _Tok(_Node):
    __slots__ = ("kind", "text")
    kind: str
    text: str


def _tokens(action: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(action):
        m = _TOKEN.match(action, pos)
        if not m:
            raise TemplateError(f"template parsing error: unexpected {action[pos:pos + 10]!r}"
                                f" in {{{{{action}}}}}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "chain":  # ")" followed by fields: split into the two
            out += [_Tok("punct", ")"), _Tok("field", m.group()[1:])]
        elif kind != "space":
            out.append(_Tok(kind, m.group()))
    return out


# --------------------------------------------------------------------------- syntax tree

class _Field(_Node):  # .A.B on dot (receiver None), on $var, or on a (sub pipeline)
    __slots__ = ("names", "receiver")
    names: list[str]
    receiver: object

    def __init__(self, names: list[str], receiver: object = None):
        super().__init__(names, receiver)


class _Var(_Node):
    __slots__ = ("name",)
    name: str


class _Lit(_Node):
    __slots__ = ("value",)
    value: object


class _Func(_Node):
    __slots__ = ("name",)
    name: str


class _Cmd(_Node):
    __slots__ = ("args",)
    args: list


class _Pipe(_Node):
    __slots__ = ("cmds", "decl", "assign")
    cmds: list[_Cmd]
    decl: list[str]
    assign: bool  # "=" rather than ":="

    def __init__(self, cmds: list[_Cmd], decl: list[str] | None = None, assign: bool = False):
        super().__init__(cmds, decl or [], assign)


class _Block(_Node):  # if / range / with
    __slots__ = ("kind", "pipe", "body", "orelse")
    kind: str
    pipe: _Pipe
    body: list
    orelse: list

    def __init__(self, kind: str, pipe: _Pipe):
        super().__init__(kind, pipe, [], [])


_FUNCS: dict[str, Callable] = {}
_UNSUPPORTED = {"define", "template", "block", "break", "continue", "html", "js", "urlquery", "call"}


def _literal(tok: _Tok):
    if tok.kind == "string":
        try:
            return json.loads(tok.text)
        except ValueError:
            raise TemplateError(f"template parsing error: bad string {tok.text}") from None
    if tok.kind == "raw":
        return tok.text[1:-1]
    text = tok.text
    if text.lower().startswith(("0x", "-0x")):
        return int(text, 16)
    return float(text) if any(c in text for c in ".eE") else int(text)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def parse(self) -> list:
        self.root: list = []
        self.stack: list[tuple[_Block, bool | str]] = []  # (block, in its else part or "chained")
        self.current = self.root
        for kind, text in self._pieces():
            if kind == "text":
                if text:
                    self.current.append(text)
                continue
            toks = _tokens(text)
            if not toks:
                raise TemplateError("template parsing error: missing value for command")
            head = toks[0].text if toks[0].kind == "ident" else ""
            if head in ("if", "range", "with"):
                block = _Block(head, self._pipe(toks[1:], allow_decl=True))
                self.current.append(block)
                self.stack.append((block, False))
                self.current = block.body
            elif head == "else":
                self._else(toks)
            elif head == "end":
                self._end(toks)
            elif head in _UNSUPPORTED:
                raise TemplateError(f"template parsing error: {{{{{head}}}}} is not supported by lg")
            else:
                self.current.append(self._pipe(toks, allow_decl=True))
        if self.stack:
            raise TemplateError(f"template parsing error: unexpected EOF: {{{{{self.stack[-1][0].kind}}}}}"
                                " has no {{end}}")
        return self.root

    def _else(self, toks: list[_Tok]) -> None:
        if not self.stack or self.stack[-1][1]:
            raise TemplateError("template parsing error: unexpected {{else}}")
        block, _ = self.stack.pop()
        if len(toks) == 1:
            self.stack.append((block, True))
            self.current = block.orelse
            return
        if toks[1].text not in ("if", "with") or toks[1].kind != "ident":
            raise TemplateError("template parsing error: unexpected tokens after {{else}}")
        # else if / else with: a block in the else part that closes with the outer one
        inner = _Block(toks[1].text, self._pipe(toks[2:], allow_decl=True))
        block.orelse.append(inner)
        self.stack += [(block, "chained"), (inner, False)]
        self.current = inner.body

    def _end(self, toks: list[_Tok]) -> None:
        if len(toks) > 1 or not self.stack:
            raise TemplateError("template parsing error: unexpected {{end}}")
        self.stack.pop()
        while self.stack and self.stack[-1][1] == "chained":
            self.stack.pop()
        self.current = self._open(self.root, self.stack)

    @staticmethod
    def _open(root: list, stack: list) -> list:
        if not stack:
            return root
        block, in_else = stack[-1]
        return block.orelse if in_else else block.body

    def _pieces(self) -> list[tuple[str, str]]:
        """Text and actions, with ``{{-`` and ``-}}`` trimming and comments dropped."""
        out: list[tuple[str, str]] = []
        pos, trim_next = 0, False
        for m in _ACTION.finditer(self.source):
            text = self.source[pos:m.start()]
            if trim_next:
                text = text.lstrip()
            if m.group(1):
                text = text.rstrip()
            out.append(("text", text))
            body = m.group(2).strip()
            if not (body.startswith("/*") and body.endswith("*/")):
                out.append(("action", body))
            trim_next, pos = bool(m.group(3)), m.end()
        rest = self.source[pos:]
        if "{{" in rest:
            raise TemplateError("template parsing error: unclosed action")
        out.append(("text", rest.lstrip() if trim_next else rest))
        return out

    def _pipe(self, toks: list[_Tok], allow_decl: bool) -> _Pipe:
        decl, assign, toks = self._decl(toks) if allow_decl else ([], False, toks)
        if not toks:
            raise TemplateError("template parsing error: missing value for command")
        cmds: list[_Cmd] = []
        args: list = []
        i = 0
        while i < len(toks):
            tok = toks[i]
            if tok.text == "|" and tok.kind == "punct":
                cmds.append(self._cmd(args))
                args = []
            elif tok.text == "(" and tok.kind == "punct":
                depth, j = 1, i + 1
                while j < len(toks) and depth:
                    if toks[j].kind == "punct":
                        depth += {"(": 1, ")": -1}.get(toks[j].text, 0)
                    j += 1
                if depth:
                    raise TemplateError("template parsing error: unclosed left paren")
                inner = self._pipe(toks[i + 1:j - 1], allow_decl=False)
                if j < len(toks) and toks[j].kind == "field" and toks[j].text != ".":
                    args.append(_Field(toks[j].text[1:].split("."), inner))
                    j += 1
                else:
                    args.append(inner)
                i = j
                continue
            else:
                args.append(self._operand(tok))
            i += 1
        cmds.append(self._cmd(args))
        return _Pipe(cmds, decl, assign)

    @staticmethod
    def _decl(toks: list[_Tok]) -> tuple[list[str], bool, list[_Tok]]:
        """``$x :=``, ``$i, $e :=`` or ``$x =`` at the head of a pipeline, split off."""
        names, i = [], 0
        while i < len(toks) and toks[i].kind == "var" and "." not in toks[i].text:
            names.append(toks[i].text)
            if i + 1 < len(toks) and toks[i + 1].text == ",":
                i += 2
                continue
            i += 1
            break
        if names and i < len(toks) and toks[i].text in (":=", "="):
            return names, toks[i].text == "=", toks[i + 1:]
        return [], False, toks

    @staticmethod
    def _cmd(args: list) -> _Cmd:
        if not args:
            raise TemplateError("template parsing error: missing command in pipeline")
        return _Cmd(args)

    @staticmethod
    def _operand(tok: _Tok):
        if tok.kind == "field":
            return _Field([] if tok.text == "." else tok.text[1:].split("."))
        if tok.kind == "var":
            name, _, rest = tok.text.partition(".")
            return _Field(rest.split("."), _Var(name)) if rest else _Var(name)
        if tok.kind in ("string", "raw", "number"):
            return _literal(tok)
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return _Lit(tok.text == "true")
            if tok.text == "nil":
                return _Lit(None)
            if tok.text in _UNSUPPORTED:
                raise TemplateError(f"template parsing error: {tok.text} is not supported by lg")
            if tok.text not in _FUNCS and tok.text not in _SHORT_CIRCUIT:
                raise TemplateError(f'template parsing error: function "{tok.text}" not defined')
            return _Func(tok.text)
        raise TemplateError(f"template parsing error: unexpected {tok.text!r}")


# --------------------------------------------------------------------------- evaluation

_MISSING = object()


def truth(value) -> bool:
    """Go's notion of true: not false, 0, nil or empty."""
    return bool(value) if value is not _MISSING else False


def _go_float(f: float) -> str:
    if f != f or f in (float("inf"), float("-inf")):
        return {True: "NaN"}.get(f != f) or ("+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "0"
    from decimal import Decimal  # floats are rare in what lg prints

    digits, exp = Decimal(repr(f)).normalize().as_tuple()[1:]
    text = "".join(map(str, digits))
    point = len(text) + int(exp)  # digits before the decimal point
    sign = "-" if f < 0 else ""
    e = point - 1
    if e < -4 or e >= 21:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{sign}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{text}"
    if point >= len(text):
        return sign + text + "0" * (point - len(text))
    return f"{sign}{text[:point]}.{text[point:]}"


def show(value) -> str:
    """A value as Go's fmt prints it with %v."""
    if value is None or value is _MISSING:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{show(k)}:{_inner(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_inner(v) for v in value) + "]"
    return str(value)


def _inner(value) -> str:
    return "<nil>" if value is None else show(value)


def _to_json(value) -> str:
    """Go's json encoding as Docker's ``json`` function sets it up (no HTML escaping);
    a :class:`Record` is marshalled as Docker marshals its rows: a map, keys sorted,
    methods left out."""
    if isinstance(value, Record):
        value = {k: v for k, v in sorted(value.items()) if not callable(v)}
    return json.dumps(None if value is _MISSING else value, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {show(key)}")
            item = item[key]
        elif item is None:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(item).__name__}")
    return item


def _join(items, sep):
    if not isinstance(items, (list, tuple)):
        raise TemplateError(f"error calling join: wrong type for value; expected []string; got {show(items)}")
    return str(sep).join(show(i) for i in items)


def _compare(op):
    def check(a, b):
        number = (int, float)
        if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, number) != isinstance(b, number):
            raise TemplateError("error calling comparison: incompatible types for comparison")
        return op(a, b)
    return check


def _eq(a, *others):
    if not others:
        raise TemplateError("error calling eq: missing argument for comparison")
    return any(a == o for o in others)


_PRINTF = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([vsdqxXfgetT%])")


def _verb(verb: str, prec: str | None, value) -> str | None:
    """One printf operand as Go formats it; None when the verb does not fit the value."""
    if verb in "vst":
        return show(value)
    if verb == "q":
        return json.dumps(show(value), ensure_ascii=False)
    if verb == "T":
        return type(value).__name__
    if verb in "dxX":
        return format(value, verb) if isinstance(value, int) else None
    return format(float(value), f".{prec or 6}{verb}") if isinstance(value, (int, float)) else None


def _printf(fmt, *args):
    queue = list(args)

    def one(m: re.Match) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        value = queue.pop(0)
        text = _verb(verb, prec, value)
        if text is None:
            return f"%!{verb}({show(value)})"
        if prec and verb in "sv":
            text = text[:int(prec)]
        if width and width != "*":
            fill = "0" if "0" in flags else " "
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), fill)
        return text

    return _PRINTF.sub(one, str(fmt))


def _truncate(s, n):
    s = show(s)
    return s[:int(n)] if len(s) > int(n) else s


_FUNCS.update({
    "json": _to_json,
    "index": _index,
    "join": _join,
    "split": lambda s, sep: show(s).split(show(sep)),
    "lower": lambda s: show(s).lower(),
    "upper": lambda s: show(s).upper(),
    "title": lambda s: show(s).title(),
    "pad": lambda s, before, after: " " * int(before) + show(s) + " " * int(after),
    "truncate": _truncate,
    "len": lambda v: len(v) if isinstance(v, (str, list, tuple, dict)) else _bad_len(v),
    "print": lambda *a: "".join(show(v) for v in a),
    "println": lambda *a: " ".join(show(v) for v in a) + "\n",
    "printf": _printf,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "not": lambda v: not truth(v),
})
_SHORT_CIRCUIT = ("and", "or")  # evaluated by _Exec.call, operand by operand


def _bad_len(v):
    raise TemplateError(f"error calling len: len of type {type(v).__name__}")


class _Exec:
    def __init__(self, data):
        self.out: list[str] = []
        self.scopes: list[dict] = [{"$": data}]

    def var(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f'template parsing error: undefined variable "{name}"')

    def run(self, nodes: list, dot) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.out.append(node)
            elif isinstance(node, _Pipe):
                value = self.pipe(node, dot)
                if not node.decl:
                    self.out.append(show(value))
            else:
                self.block(node, dot)

    def scoped(self, nodes: list, dot, bound: dict | None = None) -> None:
        self.scopes.append(dict(bound or {}))
        try:
            self.run(nodes, dot)
        finally:
            self.scopes.pop()

    def block(self, node: _Block, dot) -> None:
        if node.kind == "range":
            self.range_(node, dot)
            return
        self.scopes.append({})
        try:
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.scoped(node.body, value if node.kind == "with" else dot)
            else:
                self.scoped(node.orelse, dot)
        finally:
            self.scopes.pop()

    def range_(self, node: _Block, dot) -> None:
        decl, node.pipe.decl = node.pipe.decl, []
        try:
            value = self.pipe(node.pipe, dot)
        finally:
            node.pipe.decl = decl
        if value is None or value is _MISSING:
            items: list = []
        elif isinstance(value, dict):
            items = sorted(value.items())
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"range can't iterate over {show(value)}")
        if not items:
            self.scoped(node.orelse, dot)
            return
        for key, item in items:
            bound = {}
            if len(decl) == 1:
                bound[decl[0]] = item
            elif len(decl) == 2:
                bound[decl[0]], bound[decl[1]] = key, item
            self.scoped(node.body, item, bound)

    def pipe(self, pipe: _Pipe, dot):
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.cmd(cmd, dot, value)
        if pipe.decl:
            if pipe.assign:
                for scope in reversed(self.scopes):
                    if pipe.decl[0] in scope:
                        scope[pipe.decl[0]] = value
                        break
                else:
                    raise TemplateError(f'undefined variable "{pipe.decl[0]}"')
            else:
                self.scopes[-1][pipe.decl[0]] = value
        return value

    def cmd(self, cmd: _Cmd, dot, piped):
        head, rest = cmd.args[0], cmd.args[1:]
        if isinstance(head, _Func):
            return self.call(head.name, rest, dot, piped)
        if isinstance(head, _Field):
            return self.field(head, dot, rest, piped)
        if rest or piped is not _MISSING:
            raise TemplateError(f"can't give argument to non-function {self.describe(head)}")
        return self.value(head, dot)

    def describe(self, arg) -> str:
        if isinstance(arg, _Var):
            return arg.name
        if isinstance(arg, _Lit):
            return show(arg.value)
        return show(arg) if not isinstance(arg, (_Pipe, _Field)) else "(...)"

    def value(self, arg, dot):
        if isinstance(arg, _Field):
            return self.field(arg, dot, [], _MISSING)
        if isinstance(arg, _Var):
            return self.var(arg.name)
        if isinstance(arg, _Lit):
            return arg.value
        if isinstance(arg, _Pipe):
            self.scopes.append({})
            try:
                return self.pipe(arg, dot)
            finally:
                self.scopes.pop()
        if isinstance(arg, _Func):
            return self.call(arg.name, [], dot, _MISSING)
        return arg

    def call(self, name: str, args: list, dot, piped):
        if name in _SHORT_CIRCUIT:
            operands = args + ([_Lit(piped)] if piped is not _MISSING else [])
            if not operands:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            result = None
            for operand in operands:
                result = self.value(operand, dot)
                if truth(result) == (name == "or"):
                    return result
            return result
        values = [self.value(a, dot) for a in args]
        if piped is not _MISSING:
            values.append(piped)
        values = [None if v is _MISSING else v for v in values]
        try:
            return _FUNCS[name](*values)
        except TypeError:
            raise TemplateError(f"wrong number of args for {name}: got {len(values)}") from None
        except (ValueError, AttributeError) as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    def field(self, node: _Field, dot, args: list, piped):
        receiver = node.receiver
        if receiver is None:
            value = dot
        elif isinstance(receiver, _Var):
            value = self.var(receiver.name)
        else:
            value = self.value(receiver, dot)
        for i, name in enumerate(node.names):
            value = self.attr(value, name)
            if callable(value):
                last = i == len(node.names) - 1
                call_args = [self.value(a, dot) for a in args] if last else []
                if last and piped is not _MISSING:
                    call_args.append(piped)
                try:
                    value = value(*call_args)
                except TypeError:
                    raise TemplateError(f"wrong number of args for {name}: got {len(call_args)}") from None
                if last:
                    return value
        if args or piped is not _MISSING:
            raise TemplateError(f"{'.' + '.'.join(node.names)} is not a method but has arguments")
        return value

    @staticmethod
    def attr(value, name: str):
        if isinstance(value, Record):
            if name not in value:
                raise TemplateError(f"can't evaluate field {name} in type {value.type_name}")
            return value[name]
        if isinstance(value, dict):
            return value.get(name)
        if value is None or value is _MISSING:
            return None
        raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")


class Template:
    def __init__(self, source: str, nodes: list):
        self.source = source
        self.nodes = nodes

    def execute(self, data) -> str:
        ex = _Exec(data)
        ex.run(self.nodes, data)
        return "".join(ex.out)


def parse(source: str) -> Template:
    return Template(source, _Parser(source).parse())


# --------------------------------------------------------------------------- Docker's conventions

def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as Docker sets it up for tables: tab-terminated cells, each
    column as wide as its widest cell plus ``padding``, at least ``minwidth``, columns
    aligned over the runs of lines that have them (Go's column blocks)."""
    lines = [line.split("\t") for line in text.split("\n")]
    if lines and lines[-1] == [""]:
        lines.pop()
    widths_of: list[list[int]] = [[] for _ in lines]

    def fmt(widths: list[int], line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                widths_of[this] = widths_of[this] or list(widths)
                this += 1
                continue
            width, start = minwidth, this
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            fmt(widths + [width], start, this)

    fmt([], 0, len(lines))
    out = []
    for cells, widths in zip(lines, widths_of, strict=True):
        out.append("".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + cells[-1])
    return "".join(line + "\n" for line in out)


# Output keeps the template's newlines and tabs; every other control character that a
# value carried (a name, a command line) is escaped, as layergit.text.printable does.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in (0x09, 0x0A)}
_ESCAPES[0x1B] = "\\e"
_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x80, 0xA0), *range(0xD800, 0xE000))})


def safe(text: str) -> str:
    return text.translate(_ESCAPES)


def render(fmt: str, rows: list, headers: dict[str, str], default_table: str) -> str:
    """Rows through a ``--format`` as Docker's list commands do: ``table`` prints a
    header row and aligns columns (``table`` alone is the default table), ``json``
    is ``{{json .}}``, and ``\\t``/``\\n`` typed literally are a tab and a newline."""
    fmt = fmt.strip(" ")
    is_table = fmt.startswith("table")
    if fmt == "json":
        fmt = "{{json .}}"
    elif is_table:
        fmt = fmt[len("table"):].strip(" ") or default_table
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    template = parse(fmt)
    out = []
    if is_table:
        header = Record({k: _Header(v) for k, v in headers.items()})
        header.type_name = "header"
        out.append(template.execute(header) + "\n")
    for row in rows:
        out.append(template.execute(row) + "\n")
    text = safe("".join(out))
    return tabwrite(text) if is_table else text


class _Header(str):
    """A header cell: a method like ``.Label "k"`` shows its header too."""

    def __call__(self, *_args):
        return str(self)
