"""What OCI history cannot say about a commit, carried in the image config to rebuild it.

An image config's history has a date, a ``created_by`` text and an author string per
entry; a commit also has a committer, time zones, the exact message and its own
config.json (an ENV step's commit differs from the tip's). ``lg export`` and ``lg push``
add one record per history entry under the config's ``layergit`` key (see format.md):

    "layergit": {"version": 1, "commits": [
        {"id": HEX, "author": [NAME, EMAIL, TIME, OFFSET], "committer": [...],
         "message": TEXT, "config": {...} or absent when equal to the previous record's}]}

``lg import`` and ``lg pull`` rebuild the chain from these and the layers' trees and
keep it only when every commit hashes to its recorded id, so a round trip through a
registry or an archive gives the same ids; anything else (an image from another tool,
a record that lies, a layer that changed in transit) falls back to a plain import.
"""

from __future__ import annotations

from ..store.image import check_config
from ..store.rawobj import OBJ_COMMIT, Signature, commit_bytes, object_id

KEY = "layergit"
VERSION = 1


def _sig(sig: Signature) -> list:
    return [sig.name, sig.email, sig.time, sig.offset_minutes]


def records(chain: list) -> dict:
    """The ``layergit`` value for a first-parent chain of ``porcelain.repo.Image``, oldest first."""
    out: list[dict] = []
    previous = None
    for img in chain:
        record = {"id": img.id.hex(), "author": _sig(img.commit.author),
                  "committer": _sig(img.commit.committer), "message": img.commit.message}
        if img.config != previous:
            record["config"] = img.config
        previous = img.config
        out.append(record)
    return {"version": VERSION, "commits": out}


def _signature(value: object) -> Signature | None:
    if not isinstance(value, list) or len(value) != 4:
        return None
    name, email, when, offset = value
    if not (isinstance(name, str) and isinstance(email, str) and type(when) is int and type(offset) is int):
        return None
    if not 0 <= when < 1 << 40 or abs(offset) > 24 * 60 or any(c in name + email for c in "<>\n\0"):
        return None
    return Signature(name, email, when, offset)


def _parsed(image_config: dict, count: int) -> list[tuple[str, Signature, Signature, str, dict]] | None:
    """The records, checked, if there is one per history entry; None otherwise."""
    doc = image_config.get(KEY)
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return None
    commits = doc.get("commits")
    if not isinstance(commits, list) or len(commits) != count or not commits:
        return None
    out = []
    config = None
    for record in commits:
        if not isinstance(record, dict):
            return None
        author, committer = _signature(record.get("author")), _signature(record.get("committer"))
        message, oid = record.get("message"), record.get("id")
        if "config" in record:
            try:
                config = check_config(record["config"])
            except Exception:  # InvalidConfig or a type check_config does not expect: no records
                return None
        if author is None or committer is None or not isinstance(message, str) or config is None \
                or not isinstance(oid, str) or len(oid) != 40:
            return None
        out.append((oid, author, committer, message, config))
    return out


def rebuild(writer, image_config: dict, rootfs_trees: list[bytes]) -> bytes | None:
    """The original tip commit, written, when the records rebuild every commit of the
    chain (one rootfs tree per history entry) to its recorded id; else None."""
    from ..store.image import write_image_tree

    recorded = _parsed(image_config, len(rootfs_trees))
    if recorded is None:
        return None
    planned = []
    parent: bytes | None = None
    for (oid, author, committer, message, config), rootfs in zip(recorded, rootfs_trees, strict=True):
        tree = write_image_tree(writer, config, rootfs)
        try:
            data = commit_bytes(tree, [parent] if parent else [], author, committer, message)
        except Exception:  # a message that is not UTF-8: no exact rebuild
            return None
        parent = object_id(OBJ_COMMIT, data)
        if parent.hex() != oid:
            return None
        planned.append((tree, author, committer, message))
    parent = None
    for tree, author, committer, message in planned:
        parent = writer.commit(tree, [parent] if parent else [], author, committer, message)
    return parent
