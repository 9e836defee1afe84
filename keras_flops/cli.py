"""The ``keras-flops`` command: FLOPs and MACs of a saved model, per layer."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keras-flops",
        description="FLOPs and MACs of a Keras model, per layer.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("model", nargs="?", help="a saved model: .keras or .h5 file")
    src.add_argument(
        "--example",
        metavar="NAME",
        help="profile a keras.applications model built with weights=None "
        "(no download), e.g. ResNet50, MobileNetV2, VGG16",
    )
    p.add_argument("--batch-size", type=int, default=1, help="batch to count for (default 1)")
    p.add_argument(
        "--input-shape",
        metavar="DIMS",
        help="shape of one sample without the batch dim, e.g. 224,224,3, "
        "for models with unknown dims",
    )
    p.add_argument("--by", choices=("layer", "op"), default="layer", help="one row per layer or per op type")
    p.add_argument("--unsafe", action="store_true", help="allow loading models that carry Python code (Lambda layers)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras_flops

        model = _example(args.example) if args.example else _load(args.model, args.unsafe)
        report = keras_flops.profile(
            model, batch_size=args.batch_size, input_shape=_dims(args.input_shape), warn=False
        )
    except Exception as err:  # one clear line, unless --debug
        if args.debug:
            raise
        hint = " (on the command line: --input-shape, e.g. 224,224,3)" if "input_shape=" in str(err) else ""
        print(f"keras-flops: error: {err}{hint}", file=sys.stderr)
        return EXIT_USAGE
    if args.by == "op":
        print(report.to_dataframe(by="op").to_string())
        if report.uncounted:
            print(report.uncounted_summary(), file=sys.stderr)
    else:
        print(report)
    return 0


def _example(name: str):
    import keras

    fn = getattr(keras.applications, name, None)
    if not callable(fn):
        raise ValueError(f"{name!r} is not a keras.applications model (try ResNet50, MobileNetV2, VGG16).")
    return fn(weights=None)


def _load(path: str, unsafe: bool):
    import keras

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file.")
    return keras.saving.load_model(path, compile=False, safe_mode=not unsafe)


def _dims(text: Optional[str]):
    if not text:
        return None
    try:
        return tuple(None if d.strip() in ("", "None") else int(d) for d in text.split(","))
    except ValueError:
        raise ValueError(f"--input-shape {text!r}: give integers separated by commas, e.g. 224,224,3.") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
