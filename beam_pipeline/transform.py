"""`python -m beam_pipeline.transform`: the dry-run CLI's first name, kept as an alias of beam_pipeline.dry_run."""

from __future__ import annotations

import sys

from beam_pipeline.dry_run import main

if __name__ == "__main__":
    sys.exit(main())
