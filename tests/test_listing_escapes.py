"""Names, messages and commands an image chose never reach the terminal raw.

An image's file names, commit messages and Cmd are hostile text: an ESC sequence in a
file name erased the "A /usr/bin/backdoor" line printed above it. Every listing shows
C0 controls, DEL, C1 controls (U+009B is CSI on its own) and bytes that are not UTF-8
as escapes, piped and on a terminal (rich's path, where "[bold]" must not be read as
markup either). Names needing an escape are quoted whole, C-style, as git quotes paths
(layergit/text.py); --json returns the exact strings; the content a command exists to
print (a diff's body) stays raw when piped.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios

import pytest

pytestmark = pytest.mark.root  # lg create materialises the image's rootfs

# file name -> how listings show it (under "/")
NAMES = {
    b"esc\x1b[1A\x1b[2Kx": '"/esc\\e[1A\\e[2Kx"',  # cursor up, erase the line: what hid the backdoor
    b"nl\nA backdoor": '"/nl\\x0aA backdoor"',
    b"cr\rz": '"/cr\\x0dz"',
    "csi\u009b31m".encode(): '"/csi\\u009b31m"',
    b"bad\xff\xfe": '"/bad\\xff\\xfe"',
    b'q"uo\\te': '"/q\\"uo\\\\te"',
    b"[bold]b[|bold]": "/[bold]b[|bold]",  # a name, not rich markup: as it is
    b":warning:": "/:warning:",  # nor an emoji code
}
MESSAGE = "subject \x1b[2J\u009b31m [bold]s\nbody\rcr \x07"
MESSAGE_SHOWN = ["subject \\e[2J\\u009b31m [bold]s", "body\\x0dcr \\x07"]
COMMAND = ["\x1b]0;owned\x07", "a\nb\rc", "\u009b31m", "[red]r", "\udcff"]  # the last: the byte 0xFF
# (30 characters: what lg ps shows of a command whole)
COMMAND_SHOWN = "\\e]0;owned\\x07 a\\x0ab\\x0dc \\u009b31m [red]r \\xff"
CMD = ["/bin/\x1b[2Jx", "[red]c", "\u009b1m"]
CMD_SHOWN = "/bin/\\e[2Jx [red]c \\u009b1m"
SGR = re.compile(rb"\x1b\[[0-9;]*m")  # rich's own styles on a colour terminal


@pytest.fixture
def hostile(lg, tmp_path):
    """img:latest~1 adds the hostile names, img:latest changes a file's content to
    escape sequences; a container c1 runs a hostile command, c2 a hostile image Cmd."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in NAMES:
        with open(os.path.join(os.fsencode(tree), name), "wb") as f:
            f.write(b"x\n")
    (tree / "content").write_bytes(b"a\n")
    lg("commit", tree, "-t", "img", "-m", "names")
    (tree / "content").write_bytes(b"b\x1b[2Jc\rd\xc2\x9b\n")
    lg("commit", tree, "-t", "img", "-m", MESSAGE)
    lg("create", "--name", "c1", "--network", "none", "img", *COMMAND)  # (argv: "\udcff" goes as the byte)
    lg("commit", "c1", "-t", "img:cmd", "-c", "CMD " + json.dumps(CMD))
    lg("create", "--name", "c2", "--network", "none", "img:cmd")
    return lg


def on_pty(lg, *args, term: str) -> bytes:
    """lg's stdout when it is a terminal (rich's path), with newlines as lg wrote them."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    proc = subprocess.Popen([lg.python, "-m", "cli", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=lg.env(TERM=term, COLUMNS="250", LINES="50"))
    os.close(slave)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except OSError:  # EIO: every writer of the terminal has gone
        pass
    finally:
        os.close(master)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.replace(b"\r\n", b"\n")  # the terminal's ONLCR


def shown(out: bytes, term: str | None = None) -> str:
    """The output as text, after checking that it holds no control but newlines (and tabs)."""
    if term and term != "dumb":
        out = SGR.sub(b"", out)
    raw = [c for c in out if c < 0x20 and c not in b"\n\t" or c == 0x7F]
    assert not raw, (raw, out)
    text = out.decode("utf-8")  # strict: no byte that is not UTF-8 either
    assert not re.search("[\x80-\x9f]", text), text
    return text


LISTINGS = [  # what each listing must show, whatever the terminal
    (("diff", "img~1", "--name-status"), [f"A\t{s}" for s in NAMES.values()]),
    (("diff", "img~1", "--stat"), [f" A {s}" for s in NAMES.values()]),
    (("diff", "img~1"), [f"A {s}" for s in NAMES.values()]),
    (("log", "img"), ["    " + line for line in MESSAGE_SHOWN]),
    (("log", "--oneline", "img"), [MESSAGE_SHOWN[0]]),
    (("show", "img"), ["    " + line for line in MESSAGE_SHOWN]),
    (("ps", "-a"), [COMMAND_SHOWN, CMD_SHOWN]),
    (("images",), ["img"]),
]


@pytest.mark.parametrize("args, expected", LISTINGS, ids=[" ".join(a) for a, _ in LISTINGS])
def test_listings_escape_piped_and_on_a_terminal(hostile, args, expected):
    outputs = {"piped": shown(hostile(*args).stdout)}
    for term in ("dumb", "xterm-256color"):
        outputs[term] = shown(on_pty(hostile, *args, term=term), term)
    for where, text in outputs.items():
        for line in expected:
            assert line in text, (where, line, text)


def test_diff_bodies_are_raw_when_piped_and_escaped_on_a_terminal(hostile):
    piped = hostile("diff", "img").stdout
    assert b"    +b\x1b[2Jc\rd\xc2\x9b\n" in piped  # the file's content, as git prints it
    for term in ("dumb", "xterm-256color"):
        assert "    +b\\e[2Jc\\x0dd\\u009b" in shown(on_pty(hostile, "diff", "img", term=term), term)


def test_a_message_that_is_not_utf8_is_escaped(hostile):
    """A commit plain git made (or a peer sent) with bytes that are not UTF-8 in its message."""
    git = ["git", "--git-dir", os.path.join(hostile.root, "store.git")]
    tree = subprocess.run([*git, "rev-parse", "img/latest^{tree}"], check=True, capture_output=True).stdout.strip()
    commit = subprocess.run([*git, "-c", "user.name=x\x1b[2J", "-c", "user.email=m", "commit-tree", tree],
                            input=b"bad \xff\xfe\x1b[2J\xc2\x9b\n", check=True, capture_output=True).stdout.strip()
    subprocess.run([*git, "update-ref", "refs/heads/img/bad", commit], check=True)
    for out in (hostile("log", "img:bad").stdout, on_pty(hostile, "log", "img:bad", term="dumb")):
        text = shown(out)
        assert "\\e[2J\\u009b" in text and "Author: x\\e[2J <m>" in text, text


def test_json_gives_back_the_exact_strings(hostile):
    changes = json.loads(hostile("diff", "img~1", "--json").stdout)["changes"]
    # JSON holds text: a byte that is not UTF-8 is a lone surrogate (\udcNN), as Python's
    # surrogateescape has it, so that the path goes back to lg (-- PATH) or the kernel exactly
    paths = {os.fsencode(c["path"]) for c in changes}
    assert {b"/" + name for name in NAMES} <= paths
    bad = next(c["path"] for c in changes if c["path"].startswith("/bad"))
    assert hostile("diff", "img~1", "--name-status", "--", bad).stdout == b'A\t"/bad\\xff\\xfe"\n'
    log = json.loads(hostile("log", "img", "--json").stdout)
    assert log[0]["message"].rstrip("\n") == MESSAGE
    ps = {r["name"]: r for r in json.loads(hostile("ps", "-a", "--json").stdout)}
    assert ps["c1"]["command"] == " ".join(COMMAND) and ps["c2"]["command"] == " ".join(CMD)
    assert json.loads(hostile("show", "img:cmd", "--json").stdout)["config"]["Cmd"] == CMD
    for args in (("diff", "img~1", "--json"), ("ps", "-a", "--json"), ("inspect", "c1")):
        shown(hostile(*args).stdout)  # JSON escapes DEL and C1 too: safe on a terminal as it is
