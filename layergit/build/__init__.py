"""lg build: the Dockerfile engine, a subsystem of its own beside porcelain.

The Dockerfile's grammar (dockerfile), the context's ignore rules (dockerignore)
and the instruction subset ``lg commit -c`` takes (changes) are pure; the context
as COPY sees it (context), what COPY and ADD put into a snapshot (files), the step
cache (cache) and RUN's throw-away container (container) feed the engine
(builder), which the CLI and Python callers use: ``builder.build(repo, context,
BuildOptions(...))``.

Importing the package costs nothing: ``lg commit -c`` needs only changes.
"""
