"""The image store: a bare git repository holding metadata-exact snapshots.

Only :mod:`layergit.store.store` imports pygit2; the other modules are pure data model
(names, metadata blobs, raw object formats, packs, tree diffs) and can be tested alone.
"""
