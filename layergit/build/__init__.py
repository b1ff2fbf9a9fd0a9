"""lg build: the Dockerfile engine, a subsystem of its own beside porcelain.

The Dockerfile's grammar (dockerfile), the context's ignore rules (dockerignore),
the instruction subset ``lg commit -c`` takes (changes) and the choice of stages
to build (plan) are pure. The context as COPY sees it (context), what COPY and ADD
put into a snapshot (files), the step cache (cache) and RUN's throw-away container
(container) serve the steps, one function per instruction (steps), which the
engine (builder) runs. Callers use ``builder.build(repo, context,
options.BuildOptions(...), progress)`` and render build.events.

Importing the package costs nothing: ``lg commit -c`` needs only changes.
"""
