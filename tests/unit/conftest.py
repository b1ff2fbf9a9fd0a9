"""The unit layer: in-process tests of the pure modules of store/ and fs/, no root, no lg.

Hypothesis keeps no example database (it would be a stray .hypothesis/ in the
checkout) and no per-example deadline (CI machines are noisy); a failure prints the
seed and the smallest example it found. The default profile draws from a seed fixed by
each test's name, so a tree passes or fails the same way on every run;
``LG_HYPOTHESIS=thorough`` tries 50 times as many examples from a fresh seed, for a
change to the formats.
"""

import os

from hypothesis import settings

settings.register_profile("layergit", database=None, deadline=None, print_blob=True, derandomize=True)
settings.register_profile(
    "thorough", parent=settings.get_profile("layergit"), max_examples=5000, derandomize=False
)
settings.load_profile(os.environ.get("LG_HYPOTHESIS", "layergit"))
