"""Import order for the engine's tests.

`import beam_pipeline.mapping.feed` (or `.mapping_set`) in a fresh interpreter fails on a circular import
(feed -> us_core.outcome -> us_core/__init__ -> stages -> mapping_set -> feed); importing the package
`beam_pipeline.us_core` first resolves it. test_feed_loading.py keeps an xfail witness of that engine bug.
"""

from __future__ import annotations

import beam_pipeline.us_core  # noqa: F401  (must come before beam_pipeline.mapping.feed; see above)
