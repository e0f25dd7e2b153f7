"""`python -m serving_image serve ...` (the container's command), `build-engines` (on a GPU, ahead of time) or
`capture-sink` (KServe's request capture to S3)."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "build-engines":
    from .build_engines import main
elif len(sys.argv) > 1 and sys.argv[1] == "capture-sink":
    from .capture_sink import main

    sys.argv.pop(1)
else:
    from .entrypoint import main

sys.exit(main())
