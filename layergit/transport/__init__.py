"""Remotes and serving: moving image history to and from other git repositories.

The git command-line client does the moving where it runs (it negotiates, sends
deltas from the store's own packs and honours users' ssh config and credential
helpers); ``serve.py`` puts git's own ``git-http-backend`` behind a small threaded
HTTP server. This package owns every ``git`` process that talks to another
repository, and is the only one allowed to import dulwich.
"""
