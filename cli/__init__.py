"""The ``lg`` command line: click commands that call one porcelain function each."""
