"""Dockerfile syntax: parser directives, comments, line continuations, here-documents,
and the variable expansion and quoting Docker applies to instruction arguments.

dockerfile-parse, the maintained Python parser, does not know here-documents: the
body of ``RUN <<EOF`` comes back as instructions of its own. BuildKit's grammar is
small and precisely specified, so it is followed here instead, rule for rule
(moby/buildkit frontend/dockerfile/parser and shell): directives only before the
first other line; an escape character at the end of a line continues it unless it
is escaped itself, with comment and empty lines inside a continuation skipped; here-documents for RUN, COPY
and ADD, read after the logical line, ``<<-`` stripping leading tabs and a quoted
terminator turning expansion off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

from ..errors import LgError

INSTRUCTIONS = frozenset(
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL"
    " HEALTHCHECK SHELL".split()
)
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)(['\"]?)([A-Za-z0-9_.-]+)\3$")
_FLAG = re.compile(r"""--([a-zA-Z][a-zA-Z0-9-]*)(?:=("[^"]*"|'[^']*'|\S*))?(?:\s+|$)""")
_KEYWORD = re.compile(r"(\S+)\s*(.*)$", re.S)
_NAME_START = re.compile(r"[A-Za-z_0-9]")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class DockerfileError(LgError):
    """A Dockerfile that does not parse, or an instruction that cannot be carried out."""


@dataclass(frozen=True)
class Heredoc:
    name: str  # the terminator word, also the file name COPY gives it
    body: str  # every line with its newline
    expand: bool  # an unquoted terminator: variables in the body are expanded


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the logical line after the keyword, flags included
    line: int  # 1-based line of the keyword
    heredocs: tuple[Heredoc, ...] = ()

    def text(self, args: str | None = None) -> str:
        """The instruction as written (``args`` replaced, e.g. expanded), here-documents included."""
        head = f"{self.keyword} {self.args if args is None else args}".rstrip()
        return head + "".join(f"\n{h.body}{h.name}" for h in self.heredocs)


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[Instruction]
    escape: str = "\\"


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    lines = [line.rstrip("\r") for line in text.lstrip("\ufeff").split("\n")]
    escape, i = _directives(lines, name)
    e = re.escape(escape)
    continuation = re.compile(rf"(?<!{e}){e}[ \t]*$")
    out = []
    while i < len(lines):
        start = i
        logical, i = _logical_line(lines, i, continuation)
        if not logical.strip():
            continue
        match = _KEYWORD.match(logical.strip())
        assert match is not None  # a line that is not blank starts with a word
        keyword, args = match.groups()
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise DockerfileError(f"{name}:{start + 1}: unknown instruction: {keyword}")
        heredocs = []
        if keyword in _HEREDOC_INSTRUCTIONS:
            for chomp, quoted, word in _heredoc_markers(args, escape):
                body, i = _heredoc_body(lines, i, word, chomp, f"{name}:{start + 1}")
                heredocs.append(Heredoc(word, body, not quoted))
        out.append(Instruction(keyword, args, start + 1, tuple(heredocs)))
    return Dockerfile(out, escape)


def _directives(lines: list[str], name: str) -> tuple[str, int]:
    """The escape character the parser directives set, and the index of the line after them."""
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m or m.group(1).lower() not in _DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in directives:
            raise DockerfileError(f"{name}:{i + 1}: only one {key} parser directive can be used")
        directives[key] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{name}: invalid escape token {escape!r}: it must be ` or \\")
    return escape, i


def _logical_line(lines: list[str], i: int, continuation: re.Pattern) -> tuple[str, int]:
    """The logical line starting at ``lines[i]`` (empty for a comment) and the index after it.

    As in BuildKit, each physical line loses its own continuation: the escape character
    at its end, unless that is escaped itself (``ENV C trailing\\\\`` ends the
    instruction, docker/for-win#5254). Comment and empty lines inside a continuation
    are skipped.
    """
    first = lines[i].lstrip()
    if first.startswith("#"):
        return "", i + 1
    line, more = _uncontinued(first, continuation)
    i += 1
    while more and i < len(lines):
        raw = lines[i]
        i += 1
        if raw.strip() and not raw.lstrip().startswith("#"):
            part, more = _uncontinued(raw, continuation)
            line += part
    return line, i


def _uncontinued(line: str, continuation: re.Pattern) -> tuple[str, bool]:
    m = continuation.search(line)
    return (line[: m.start()], True) if m else (line, False)


def _heredoc_body(lines: list[str], i: int, word: str, chomp: bool, where: str) -> tuple[str, int]:
    """A here-document's lines up to its terminator (``<<-``: leading tabs stripped), and the index after
    it."""
    body: list[str] = []
    while True:
        if i == len(lines):
            raise DockerfileError(f"{where}: here-document {word} is not terminated")
        raw = lines[i].lstrip("\t") if chomp else lines[i]
        i += 1
        if raw == word:
            return "".join(body), i
        body.append(raw + "\n")


def _heredoc_markers(args: str, escape: str = "\\") -> list[tuple[bool, bool, str]]:
    """(strip tabs, quoted, terminator) for each ``<<WORD`` in an instruction's arguments.

    Words that do not lex (an open quote) mean no here-documents, as in BuildKit: the
    line is still an instruction, and its own expansion reports the quote, if any does.
    """
    out = []
    try:
        words = Expander({}, escape).raw_words(args)
    except DockerfileError:
        return []
    for word in words:
        m = _HEREDOC.match(word)
        if m:
            out.append((m.group(2) == "-", bool(m.group(3)), m.group(4)))
    return out


def heredoc_name(word: str) -> str | None:
    """The terminator a source word like ``<<EOF`` refers to, None for other words."""
    m = _HEREDOC.match(word)
    return m.group(4) if m else None


def split_flags(args: str) -> tuple[dict[str, list[str]], str]:
    """Leading ``--name[=value]`` flags (values unexpanded, quotes removed) and the rest."""
    flags: dict[str, list[str]] = {}
    pos = 0
    while True:
        m = _FLAG.match(args, pos)
        if not m:
            break
        value = m.group(2)
        if value and value[0] in "\"'" and value[-1] == value[0] and len(value) > 1:
            value = value[1:-1]
        flags.setdefault(m.group(1), []).append(value if value is not None else "true")
        pos = m.end()
    if args.startswith("-- ", pos) or args[pos:] == "--":
        pos += 2
    return flags, args[pos:].strip()


def copy_words(args: str) -> list[str]:
    """COPY and ADD's SOURCE... DEST as written, before expansion (BuildKit's parseMaybeJSONToList).

    The exec form's strings, else the words between blanks: quotes and escapes are each
    word's own, for its expansion, so ``\\conf\\\\" /.znc`` is the source ``\\conf\\\\"``
    and the destination ``/.znc``, not an open quote, and ``"a b"`` is two words.
    """
    exec_form = json_list(args)
    if exec_form is not None:
        return exec_form
    return _WHITESPACE.split(args.strip()) if args.strip() else []


def json_list(args: str) -> list[str] | None:
    """The exec (JSON array) form of an instruction's arguments, None for the shell form."""
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested past json's limit
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def check_flags(instr: Instruction, flags: Mapping[str, list[str]], allowed: set[str], name: str) -> None:
    """Refuse a flag the instruction does not take here (``name``: the Dockerfile's, for the message)."""
    for flag in flags:
        if flag not in allowed:
            raise DockerfileError(f"{name}:{instr.line}: {instr.keyword} --{flag} is not supported")


def arg_declarations(instr: Instruction, ex: Expander, name: str) -> list[tuple[str, str | None]]:
    """``ARG NAME[=DEFAULT]...`` as (name, default) pairs, defaults expanded by ``ex``."""
    out = []
    for word in ex.raw_words(instr.args):
        key, eq, value = word.partition("=")
        if not key:
            raise DockerfileError(f"{name}:{instr.line}: ARG names can not be blank")
        out.append((key, ex.word(value) if eq else None))
    if not out:
        raise DockerfileError(f"{name}:{instr.line}: ARG requires at least one argument")
    return out


def name_values(instr: Instruction, ex: Expander) -> list[tuple[str, str]]:
    """ENV and LABEL's ``KEY=VALUE...`` (Docker's parseNameVal), or the legacy ``KEY VALUE WITH SPACES``."""
    words = ex.raw_words(instr.args)
    if not words:
        raise DockerfileError(f"{instr.keyword} requires at least one argument")
    if "=" not in words[0]:
        rest = instr.args.strip()[len(words[0]):].strip()
        if not rest:
            raise DockerfileError(f"{instr.keyword} {words[0]} needs a value (KEY=VALUE or KEY VALUE)")
        return [(words[0], ex.word(rest))]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise DockerfileError(f"{instr.keyword} expects KEY=VALUE, got {word!r}")
        out.append((ex.word(key), ex.word(value)))
    return out


class Expander:
    """Docker's word processing: quotes, the escape character and ``$VAR`` substitution.

    Supports ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``,
    ``${NAME:+word}``, ``${NAME+word}``, ``${NAME:?msg}`` and ``${NAME?msg}``; unset
    variables expand to nothing, as in Docker. BuildKit's pattern forms too:
    ``${NAME#glob}``/``${NAME##glob}`` remove the shortest/longest matching prefix,
    ``${NAME%glob}``/``${NAME%%glob}`` the suffix, ``${NAME/glob/word}`` replaces the
    first match, ``${NAME//glob/word}`` every one (globs: ``*``, ``?``, ``[...]``).
    """

    def __init__(self, env: Mapping[str, str], escape: str = "\\"):
        self.env = env
        self.escape = escape

    def word(self, text: str) -> str:
        """One word: quotes removed, variables expanded, whitespace kept."""
        return "".join(_Lexer(self, text, split=False, raw=False, expand=True).run())

    def words(self, text: str) -> list[str]:
        """Whitespace-separated words, quotes removed, variables expanded."""
        return _Lexer(self, text, split=True, raw=False, expand=True).run()

    def render(self, text: str) -> str:
        """The text with variables expanded and everything else as written (for commit messages)."""
        return "".join(_Lexer(self, text, split=False, raw=True, expand=True).run())

    def raw_words(self, text: str) -> list[str]:
        """Whitespace-separated words exactly as written (quotes kept, nothing expanded)."""
        return _Lexer(self, text, split=True, raw=True, expand=False).run()


# ${A:-${B:-...}} is read by a lexer per level: deeper than anyone writes, and far below
# the interpreter's recursion limit, which a Dockerfile must not reach.
_MAX_NESTING = 64


# A pattern substitution costs at most this many matcher steps: a hostile Dockerfile
# gets one error, never a build that hangs (a regex would backtrack exponentially).
_GLOB_BUDGET = 1_000_000


class _Glob:
    """A shell glob (``*``, ``?``, ``[...]``, ``[!...]``) matched by simulating its
    automaton: linear in the text for each start, within one budget of steps."""

    def __init__(self, pattern: str, budget: list[int]):
        self.tokens: list[tuple[str, str]] = []  # ("*", ""), ("?", ""), ("=", ch), ("[", set), ("!", set)
        self.budget = budget
        i = 0
        while i < len(pattern):
            ch = pattern[i]
            i += 1
            if ch in "*?":
                self.tokens.append((ch, ""))
            elif ch == "[" and "]" in pattern[i + 1:]:
                end = pattern.index("]", i + 1)
                body = pattern[i:end]
                negated = body[:1] in ("!", "^")
                self.tokens.append(("!" if negated else "[", _class(body[1:] if negated else body)))
                i = end + 1
            else:
                self.tokens.append(("=", ch))

    def reversed(self) -> _Glob:
        other = _Glob("", self.budget)
        other.tokens = self.tokens[::-1]
        return other

    def _closure(self, states: set[int]) -> set[int]:
        out = set(states)
        for t in sorted(states):
            while t < len(self.tokens) and self.tokens[t][0] == "*":
                t += 1
                out.add(t)
        return out

    def ends(self, text: str, start: int = 0) -> list[int]:
        """Every end such that text[start:end] matches the whole pattern, ascending."""
        states = self._closure({0})
        found = []
        for j in range(start, len(text) + 1):
            if len(self.tokens) in states:
                found.append(j)
            if j == len(text) or not states:
                break
            self.budget[0] -= len(states)
            if self.budget[0] < 0:
                raise DockerfileError("pattern substitution too costly for this value")
            ch, new = text[j], set()
            for t in states:
                if t == len(self.tokens):
                    continue
                kind, arg = self.tokens[t]
                if kind == "*":
                    new.add(t)
                elif kind == "?" or (kind == "=" and ch == arg) or (kind == "[" and ch in arg) or \
                        (kind == "!" and ch not in arg):
                    new.add(t + 1)
            states = self._closure(new)
        return found


def _class(body: str) -> str:
    """The characters of a bracket expression's body (``a-z0-9_``)."""
    chars, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)][:4096]
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(chars)


class _Lexer:
    def __init__(self, ex: Expander, text: str, split: bool, raw: bool, expand: bool, depth: int = 0):
        self.ex, self.text, self.split, self.raw, self.expand = ex, text, split, raw, expand
        self.depth = depth
        self.pos = 0
        self.words: list[str] = []
        self.cur: list[str] = []
        self.in_word = False

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _end_word(self) -> None:
        if self.in_word:
            self.words.append("".join(self.cur))
        self.cur, self.in_word = [], False

    def _add(self, s: str, splittable: bool = False) -> None:
        for ch in s:
            if splittable and self.split and ch.isspace():
                self._end_word()
            else:
                self.cur.append(ch)
                self.in_word = True

    def run(self, stop: str = "") -> list[str]:
        esc = self.ex.escape
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if stop and ch == stop:
                break
            self.pos += 1
            if ch.isspace() and self.split:
                self._end_word()
            elif ch == esc:
                nxt = self._peek()
                if nxt:
                    self.pos += 1
                self._add(ch + nxt if self.raw else nxt)
                self.in_word = True
            elif ch == "'":
                end = self.text.find("'", self.pos)
                if end < 0:
                    raise DockerfileError(
                        "unexpected end of statement while looking for matching single-quote"
                        f" in {self.text!r}"
                    )
                body = self.text[self.pos:end]
                self.pos = end + 1
                self._add("'" + body + "'" if self.raw else body)
                self.in_word = True
            elif ch == '"':
                self._double()
            elif ch == "$" and self.expand:
                self._add(self._dollar(), splittable=True)
            else:
                self._add(ch)
        self._end_word()
        return self.words if self.split or self.words else [""]

    def _double(self) -> None:
        esc = self.ex.escape
        out = ['"'] if self.raw else []
        while True:
            if self.pos >= len(self.text):
                raise DockerfileError(
                    f"unexpected end of statement while looking for matching double-quote in {self.text!r}"
                )
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                break
            if ch == "$" and self.expand:
                out.append(self._dollar())
            elif ch == esc and self._peek() in ('"', "$", esc) and self._peek():
                out.append(ch + self._peek() if self.raw else self._peek())
                self.pos += 1
            else:
                out.append(ch)
        if self.raw:
            out.append('"')
        self._add("".join(out))
        self.in_word = True

    def _name(self) -> str:
        start = self.pos
        if self._peek().isdigit():
            self.pos += 1
            return self.text[start:self.pos]
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def _dollar(self) -> str:
        if self._peek() != "{":
            if not _NAME_START.match(self._peek() or " "):
                return "$"
            return self.ex.env.get(self._name(), "")
        self.pos += 1
        name = self._name()
        if not name:
            raise DockerfileError(f"syntax error: bad substitution in {self.text!r}")
        op = self._peek()
        self.pos += 1
        if op == "}":
            return self.ex.env.get(name, "")
        if op in ("#", "%", "/"):
            return self._pattern(name, op)
        colon = op == ":"
        if colon:
            op = self._peek()
            self.pos += 1
        if op not in ("-", "+", "?"):
            raise DockerfileError(f"unsupported modifier ({op}) in substitution {self.text!r}")
        if self.depth >= _MAX_NESTING:
            raise DockerfileError(f"substitutions nested over {_MAX_NESTING} deep: {self.text[:80]!r}...")
        sub = _Lexer(self.ex, self.text, split=False, raw=False, expand=True, depth=self.depth + 1)
        sub.pos = self.pos
        word = "".join(sub.run(stop="}"))
        if sub.pos >= len(self.text):
            raise DockerfileError(f"syntax error: missing '}}' in {self.text!r}")
        self.pos = sub.pos + 1
        value = self.ex.env.get(name)
        if value is None or (colon and value == ""):  # unset; with ':', empty counts as unset too
            if op == "?":
                raise DockerfileError(f"{name}: {word or 'is not allowed to be unset'}")
            return word if op == "-" else ""
        return word if op == "+" else value

    def _sub_word(self, stop: str) -> tuple[str, str]:
        """The word up to ``stop`` or ``}`` (expanded), and which of them ended it."""
        if self.depth >= _MAX_NESTING:
            raise DockerfileError(f"substitutions nested over {_MAX_NESTING} deep: {self.text[:80]!r}...")
        sub = _Lexer(self.ex, self.text, split=False, raw=False, expand=True, depth=self.depth + 1)
        sub.pos = self.pos
        ends = [i for i in (self.text.find(stop, self.pos) if stop else -1, self.text.find("}", self.pos))
                if i >= 0]
        word = "".join(sub.run(stop=self.text[min(ends)] if ends else "}"))
        if sub.pos >= len(self.text):
            raise DockerfileError(f"syntax error: missing '}}' in {self.text!r}")
        self.pos = sub.pos + 1
        return word, self.text[sub.pos]

    def _pattern(self, name: str, op: str) -> str:
        """``#``, ``##``, ``%``, ``%%``, ``/`` and ``//`` (see Expander)."""
        twice = self._peek() == op
        if twice:
            self.pos += 1
        pattern, ended = self._sub_word("/" if op == "/" else "")
        replacement = self._sub_word("")[0] if op == "/" and ended == "/" else ""
        value = self.ex.env.get(name) or ""
        glob = _Glob(pattern, [_GLOB_BUDGET])
        if op == "#":  # the shortest (or, doubled, the longest) prefix that matches
            ends = glob.ends(value)
            return value[(ends[-1] if twice else ends[0]):] if ends else value
        if op == "%":  # the same of the reversed value and pattern: a suffix
            ends = glob.reversed().ends(value[::-1])
            return value[:len(value) - (ends[-1] if twice else ends[0])] if ends else value
        if not pattern:
            return value
        out, i = [], 0  # "/": the leftmost match, longest there; "//": every one
        while i <= len(value):
            ends = glob.ends(value, i)
            if not ends:
                if i < len(value):
                    out.append(value[i])
                i += 1
                continue
            out.append(replacement)
            if ends[-1] == i:  # an empty match: keep the character it stood before
                out.append(value[i:i + 1])
                i += 1
            else:
                i = ends[-1]
            if not twice:
                out.append(value[i:])
                break
        return "".join(out)
