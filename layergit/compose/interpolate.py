"""Variables in compose files: ``.env`` and ``${VAR}`` interpolation, as compose has them.

Forms, in every string value (never in keys, as compose): ``$VAR`` and ``${VAR}``;
``${VAR:-default}`` (unset or empty) and ``${VAR-default}`` (unset); ``${VAR:?message}``
and ``${VAR?message}`` (an error naming VAR); ``${VAR:+other}`` and ``${VAR+other}``
(other when set); ``$$`` for a literal ``$``. Defaults and messages may themselves
hold variables. An unset variable without a default is empty, with one warning
naming it, as compose warns.

Variables come from lg's environment first, then the project's ``.env`` file
(compose's precedence: the shell wins). ``.env`` lines are ``NAME=VALUE``, optionally
after ``export``; a quoted value may go on over lines to its closing quote (a PEM key);
``#`` starts a comment line, or a comment after whitespace in an unquoted value; single
quotes keep a value as written, double quotes take ``\\n``,
``\\t``, ``\\"`` and ``\\\\`` escapes and variables, as do unquoted values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from . import ComposeError, read_small

ENV_FILE_MAX = 1 << 20  # bytes
NESTING_MAX = 32  # ${A:-${B:-...}} levels: each is a call, and a file could nest thousands
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)")


class Variables:
    """Where ``${VAR}`` looks: the environment, then .env; unset ones it warned about."""

    def __init__(self, environ: Mapping[str, str], dotenv: Mapping[str, str] | None = None):
        self._environ = environ
        self._dotenv = {} if dotenv is None else dotenv
        self.unset: list[str] = []  # named in the order first met, each once

    def get(self, name: str) -> str | None:
        if name in self._environ:
            return self._environ[name]
        return self._dotenv.get(name)

    def blank(self, name: str) -> str:
        if name not in self.unset:
            self.unset.append(name)
        return ""


def substitute(text: str, variables: Variables, where: str) -> str:
    """``text`` with its variables replaced; ``where`` names the value in errors."""
    out, i = [], 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        value, i = _one(text, j, variables, where)
        out.append(value)


def _one(text: str, start: int, variables: Variables, where: str) -> tuple[str, int]:
    """The value of the reference at ``text[start] == "$"``, and where the text goes on."""
    nxt = text[start + 1:start + 2]
    if nxt == "$":
        return "$", start + 2
    if nxt != "{":
        m = _NAME.match(text, start + 1)
        if not m:  # a lone "$" (compose keeps it too)
            return "$", start + 1
        value = variables.get(m.group())
        return (variables.blank(m.group()) if value is None else value), m.end()
    close = _closing_brace(text, start + 2, where)
    if close < 0:
        raise ComposeError(f"{where}: invalid interpolation format {_clip(text[start:])!r}: no closing brace")
    body = text[start + 2:close]
    m = _NAME.match(body)
    if not m:
        shown = _clip(f"${{{body}}}")
        raise ComposeError(f"{where}: invalid interpolation format {shown}: not a variable name")
    name, rest = m.group(), body[m.end():]
    value = variables.get(name)
    if not rest:
        return (variables.blank(name) if value is None else value), close + 1
    operators: dict[str, Callable[[], str]] = {
        ":-": lambda: substitute(rest[2:], variables, where) if not value else value,
        "-": lambda: substitute(rest[1:], variables, where) if value is None else value,
        ":+": lambda: substitute(rest[2:], variables, where) if value else "",
        "+": lambda: substitute(rest[1:], variables, where) if value is not None else "",
        ":?": lambda: value if value else _required(name, rest[2:], variables, where),
        "?": lambda: value if value is not None else _required(name, rest[1:], variables, where),
    }
    for operator in (":-", ":+", ":?", "-", "+", "?"):
        if rest.startswith(operator):
            return operators[operator](), close + 1
    raise ComposeError(f"{where}: invalid interpolation format {_clip(f'${{{body}}}')}")


def _required(name: str, message: str, variables: Variables, where: str) -> str:
    said = substitute(message, variables, where)
    why = f": {_clip(said)}" if said else ""
    raise ComposeError(f"{where}: required variable {name} is missing a value{why}")


def _clip(text: str, most: int = 80) -> str:
    """At most ``most`` characters of a value quoted in an error: the line stays one line
    of a terminal, however long the hostile value."""
    return text if len(text) <= most else f"{text[:most]}..."


def _closing_brace(text: str, i: int, where: str) -> int:
    """The index of the ``}`` that closes a ``${`` opened before ``i`` (nested ones counted,
    at most :data:`NESTING_MAX` deep, so the substitution's recursion is bounded)."""
    depth = 1
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            if depth > NESTING_MAX:
                raise ComposeError(f"{where}: variables nest more than {NESTING_MAX} levels deep")
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate(value, variables: Variables, where: str = ""):
    """A copy of ``value`` (plain data) with every string substituted; maps' keys stay."""
    if isinstance(value, str):
        return substitute(value, variables, where or "value")
    if isinstance(value, dict):
        return {k: interpolate(v, variables, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def read_env_file(path: str, environ: Mapping[str, str], required: bool = False) -> dict[str, str]:
    """The variables of a ``.env`` file (empty when it is missing and not ``required``)."""
    if not required and not os.path.lexists(path):
        return {}
    raw = read_small(path, ENV_FILE_MAX, "env file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ComposeError(f"env file {path} is not UTF-8 text") from None
    return parse_env(text, path, environ)


def parse_env(text: str, name: str, environ: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    variables = Variables(environ, found)  # a value may use the ones above it
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line, number = lines[number], number + 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if not m:
            raise ComposeError(f"{name}:{number}: not a NAME=VALUE line")
        key, first, raw = m.group(1), number, [m.group(2)]
        quote = raw[0][:1] if raw[0][:1] in ("'", '"') else ""
        if quote and not _closes(raw[0][1:], quote):  # a quoted value goes on to its closing quote
            while number < len(lines) and not _closes(lines[number], quote):
                raw.append(lines[number])
                number += 1
            raw.extend(lines[number:number + 1])
            number += 1
        found[key] = _env_value("\n".join(raw), variables, f"{name}:{first}")
    return found


def _closes(text: str, quote: str) -> bool:
    """Whether ``text`` holds the closing ``quote`` (in double quotes, not one escaped)."""
    if quote == "'":
        return "'" in text
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return True
        i += 1
    return False


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _env_value(raw: str, variables: Variables, where: str) -> str:
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise ComposeError(f"{where}: a single quote is not closed")
        return raw[1:end]
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
                i += 2
                continue
            out.append(raw[i])
            i += 1
        if i >= len(raw):
            raise ComposeError(f"{where}: a double quote is not closed")
        return substitute("".join(out), variables, where)
    comment = re.search(r"\s#", raw)
    return substitute((raw[:comment.start()] if comment else raw).strip(), variables, where)
