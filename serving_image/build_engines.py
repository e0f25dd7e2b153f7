"""`python -m serving_image build-engines --model-dir DIR [--cache DIR]`: build this GPU's engine ahead of time.

Run on a GPU of the target architecture (a CI runner, or `docker run --gpus all` of the image) and ship the
`model.smXY.plan` it writes inside the released model: containers then start without building. Engines are also
cached by (architecture, TensorRT version, ONNX sha256), so a start with the cache on a volume never rebuilds.
"""

import argparse
import shutil
import sys
from pathlib import Path

from .engines import TensorRTUnavailable, build_engine
from .repository import ModelFileError, load_model_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving_image build-engines", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["build-engines"])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/var/cache/mlserve/engines"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        spec, onnx_path = load_model_dir(args.model_dir)
        engine = build_engine(onnx_path, spec, args.cache)
    except (ModelFileError, TensorRTUnavailable) as error:
        print(f"build-engines: {error}", file=sys.stderr)
        return 2
    shutil.copy2(engine, args.model_dir / engine.name)
    print(f"build-engines: {args.model_dir / engine.name}")
    return 0
