"""`python -m serving_image serve ...` (the container's command) or `build-engines` (on a GPU, ahead of time)."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "build-engines":
    from .build_engines import main
else:
    from .entrypoint import main

sys.exit(main())
