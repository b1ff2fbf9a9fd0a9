"""User-level operations. Each takes a :class:`Repo` and returns plain data.

Nothing here prints or imports click or rich: the CLI renders what these return,
and Python users get the same values (see layergit.api).
"""
