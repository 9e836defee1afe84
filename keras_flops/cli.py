"""The ``keras-flops`` command: FLOPs and MACs of a saved model, per layer.

    keras-flops model.keras [--batch-size N] [--input-shape 224,224,3 | NAME=DIMS ...]
                [--sequence-length N]
                [--by layer|op] [--format table|csv|json|markdown] [--top N]
                [--plot out.png] [--counting full|tfprof] [--unsafe] [--debug]
    keras-flops --example ResNet50
    keras-flops config.json --sequence-length 128   # a keras_hub preset's config, or model.to_json()

Models load in Keras's safe mode: a file that carries Python code (a Lambda
layer) is refused and nothing from it runs, unless --unsafe is given. A JSON
config is built without allocating its weights, so a 70B config is counted
on a laptop. Every
error is one line on stderr and exit code 2 (--debug shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import warnings
from typing import List, Optional

from keras_flops.errors import first_line

EXIT_ERROR = 2


class CliError(Exception):
    """An error the command reports in one line."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keras-flops",
        description="FLOPs and MACs of a Keras model, per layer. MODEL is a .keras or "
        ".h5 file, a SavedModel directory, or a model's JSON config (a keras_hub preset's "
        "config.json, or what model.to_json() writes), built without weights.",
    )
    p.add_argument("model", nargs="?", help="a .keras or .h5 file, a SavedModel directory, or a .json config")
    p.add_argument(
        "--example",
        metavar="NAME",
        help="profile a keras.applications model built with weights=None (no download), "
        "e.g. ResNet50, MobileNetV2, VGG16",
    )
    p.add_argument("--batch-size", type=int, default=1, help="batch to count for (default 1)")
    p.add_argument(
        "--input-shape",
        metavar="DIMS",
        action="append",
        help="shape of one sample without the batch dim, e.g. 224,224,3, for models with unknown "
        "dims; for a model with several inputs, once per input as NAME=DIMS",
    )
    p.add_argument(
        "--sequence-length",
        type=int,
        metavar="N",
        help="fill every unknown dim of every input with N (token_ids and padding_mask of a "
        "language model, say)",
    )
    p.add_argument(
        "--generate",
        metavar="PROMPT:MAX",
        help="count what generate() runs for a language model (a keras_hub CausalLM, or a "
        "backbone, wrapped in its CausalLM): prompts of PROMPT tokens generated up to MAX",
    )
    p.add_argument(
        "--device",
        metavar="GPU",
        help="a roofline on this GPU (H100, H100 PCIe, H200, A100, V100, L4, T4): with --generate, the "
        "prefill's and a decode step's times, their bounds and tokens per second; else the model's time",
    )
    p.add_argument(
        "--memory",
        nargs="?",
        const="training",
        choices=("training", "inference"),
        help="the memory it needs instead, by part (weights, gradients, optimizer state, saved "
        "activations, the largest transient): of a training step (default) or an inference call; "
        "with --device, whether it fits",
    )
    p.add_argument(
        "--optimizer",
        metavar="NAME",
        help="with --memory: the optimizer whose state to count (adam, sgd, ...; default: "
        "the model's compiled one)",
    )
    p.add_argument(
        "--mesh",
        metavar="AXES",
        help="count each device's program on a keras.distribution mesh, e.g. batch=1,model=8 (JAX): "
        "sharded by the model's get_layout_map, as keras_hub's backbones have one (a mesh of one "
        "'batch' axis alone is data parallel); run in a process of its own, with that many host "
        "devices, where this one has fewer",
    )
    p.add_argument("--by", choices=("layer", "op"), default="layer", help="one row per layer or per op type")
    p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    p.add_argument("--top", type=int, metavar="N", help="only the N rows with the most FLOPs")
    p.add_argument("--plot", metavar="PNG", help="also draw the top rows as bars into this image")
    p.add_argument(
        "--counting",
        choices=("full", "tfprof"),
        default="full",
        help="tfprof: reproduce tf.profiler's numbers exactly",
    )
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="allow loading a model that carries Python code (Lambda layers); "
        "that code runs while the model loads",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if bool(args.model) == bool(args.example):
        print(
            "keras-flops: error: give a MODEL path or --example NAME (one of them); see keras-flops --help.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        mesh = _mesh(args.mesh) if args.mesh else None
    except CliError as err:
        print(f"keras-flops: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    if mesh is not None and not _has_devices(math.prod(mesh.values())):
        return _in_a_process_with_devices(argv, math.prod(mesh.values()))
    if not args.debug:
        _quiet_tensorflow()
    try:
        report = _report(args, mesh)
        print(_render(report, args))
        if args.plot:
            report.plot(top=args.top or 10, path=args.plot, by=args.by)
    except Exception as err:  # one clear line, unless --debug
        if args.debug:
            raise
        print(f"keras-flops: error: {_message(err)}", file=sys.stderr)
        return EXIT_ERROR
    parts = (report.prefill, report.decode) if args.generate else (report,)
    for part in parts:
        if getattr(part, "uncounted", None) and args.format != "json":
            print(part.uncounted_summary(), file=sys.stderr)
    return 0


_MESH_CHILD = "KERAS_FLOPS_MESH_PROCESS"  # set in the process --mesh starts with its devices


def _mesh(text: str) -> dict:
    """``batch=1,model=8`` as ``{"batch": 1, "model": 8}``, in its order."""
    mesh = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        if not name.strip() or not size.strip().isdigit() or int(size) < 1:
            raise CliError(
                f"--mesh {text!r}: give AXIS=SIZE pairs separated by commas, e.g. batch=1,model=8."
            )
        mesh[name.strip()] = int(size)
    return mesh


def _has_devices(n: int) -> bool:
    """Whether this process runs Keras on JAX with at least ``n`` devices (a
    process that --mesh started with its devices has them)."""
    if os.environ.get(_MESH_CHILD):
        return True
    if os.environ.get("KERAS_BACKEND") != "jax":
        return False
    import keras

    return len(keras.distribution.list_devices()) >= n


def _in_a_process_with_devices(argv: List[str], n: int) -> int:
    """The same command in a process of its own, on JAX with ``n`` host
    devices (JAX takes them at start-up: XLA_FLAGS), its output passed on."""
    flags = os.environ.get("XLA_FLAGS", "")
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", flags)
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={n}".strip(),
        **{_MESH_CHILD: "1"},
    )
    return subprocess.run([sys.executable, "-m", "keras_flops.cli", *argv], env=env).returncode


def _distribute(model, mesh: dict):
    """Set the keras.distribution ``mesh`` describes for ``model``: its own
    layout map (``get_layout_map(mesh)``, keras_hub's backbones and their
    tasks'), or data parallelism on a mesh of one batch axis."""
    import keras

    devices = keras.distribution.list_devices()[: math.prod(mesh.values())]
    device_mesh = keras.distribution.DeviceMesh(tuple(mesh.values()), list(mesh), devices)
    layout_of = getattr(getattr(model, "backbone", model), "get_layout_map", None)
    if layout_of is not None:
        layout = layout_of(device_mesh)
        batch = "batch" if "batch" in mesh else list(mesh)[0]
        keras.distribution.set_distribution(
            keras.distribution.ModelParallel(layout_map=layout, batch_dim_name=batch)
        )
    elif len(mesh) == 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=device_mesh))
    else:
        raise CliError(
            f"{type(model).__name__} has no get_layout_map(mesh) to shard it over {len(mesh)} axes; give a "
            "mesh of one batch axis (data parallel, e.g. --mesh batch=8), or profile it from Python with "
            "a keras.distribution.LayoutMap of your own."
        )


def _quiet_tensorflow() -> None:
    """Import Keras, and so its backend's framework, without TensorFlow's
    start-up lines. Some are written by its C++ logging before any log level
    applies, so standard error is pointed at /dev/null for the length of the
    import; later messages follow TF_CPP_MIN_LOG_LEVEL (3 unless set).
    keras_flops itself imports frameworks lazily, so this runs first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import keras  # noqa: F401  (on TensorFlow, Keras imports it)
            except ImportError:
                pass  # reported, with its reason, where keras_flops needs it
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


def _report(args, mesh=None):
    import keras_flops
    from keras_flops import backends
    from keras_flops.core import inputs

    if args.batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {args.batch_size}.")
    shape = _shapes(args.input_shape)
    if args.model and _is_saved_model(args.model):
        return keras_flops.profile_saved_model(  # TensorFlow's format: TensorFlow only
            args.model, args.batch_size, shape, counting=args.counting, warn=False
        )
    model = (
        _example(args.example) if args.example else _load(args.model, args.unsafe, args.memory == "training")
    )
    if mesh is not None:
        if args.generate:
            raise CliError("--mesh counts one forward pass or training step; it does not go with --generate.")
        _distribute(model, mesh)
    if args.generate:
        if args.plot:
            raise CliError("--plot draws one forward pass; it does not go with --generate.")
        from keras_flops.generation import causal_lm_for, profile_generation

        prompt, max_length = _lengths(args.generate)
        return profile_generation(causal_lm_for(model), prompt, max_length, args.batch_size, warn=False)
    if args.sequence_length is not None:
        if args.sequence_length < 1:
            raise CliError(f"--sequence-length must be at least 1, got {args.sequence_length}.")
        shape = inputs.filled_shapes(model, args.sequence_length, shape, backends.of(model))
    if args.memory:
        if args.format not in ("table", "json") or args.plot:
            raise CliError(f"--memory prints a table or JSON, not {args.plot and 'a plot' or args.format}.")
        return keras_flops.memory(
            model, args.batch_size, shape, training=args.memory == "training", optimizer=args.optimizer
        )
    if args.optimizer:
        raise CliError("--optimizer goes with --memory.")
    return keras_flops.profile(
        model, batch_size=args.batch_size, input_shape=shape, counting=args.counting, warn=False
    )


def _is_saved_model(path) -> bool:
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt")
    )


def _render(report, args) -> str:
    if args.memory and not args.generate:  # a MemoryReport
        if args.format == "json":
            return json.dumps(report.to_dict(device=args.device), indent=2)
        return str(report) + (f"\n{report.fits(args.device)}" if args.device else "")
    if args.generate:  # a GenerationReport: its own table
        if args.format == "json":
            return json.dumps(report.to_dict(device=args.device), indent=2)
        if args.format != "table":
            raise CliError(f"--generate prints a table or JSON, not {args.format}.")
        text = str(report) + (f"\n{report.roofline(args.device)}" if args.device else "")
        if args.memory:
            text += f"\n{report.memory}" + (f"\n{report.memory.fits(args.device)}" if args.device else "")
        return text
    if args.device:
        if args.format != "table":
            raise CliError(f"--device adds a roofline to the table or to --generate, not to {args.format}.")
        seconds = report.roofline_time(args.device)
        text = f"{report}\nRoofline on {args.device}: {seconds * 1e3:.3g} ms (compulsory traffic)"
        return text + (f"\n{_device_lines(report, args.device)}" if report.per_device is not None else "")
    if report.per_device is not None and args.format == "table":
        return f"{report}\n{_device_lines(report)}"
    if args.format == "json":
        return report.to_json()
    if args.format == "csv":
        from keras_flops.render.text import top_rows

        return top_rows(report.to_dataframe(by=args.by), args.top).to_csv().rstrip("\n")
    if args.format == "markdown":
        return report.to_markdown(by=args.by, top=args.top).rstrip("\n")
    if args.by == "op" or args.top:
        table = report.readable(by=args.by, top=args.top)
        return f"{table.to_string()}\n{report.totals_line()}"
    return str(report)


def _device_lines(report, device=None) -> str:
    """One device's program under a mesh: its counts, weights and collectives."""
    from keras_flops.render.text import format_count

    one = report.per_device
    mesh = " x ".join(f"{axis} {size}" for axis, size in report.mesh.items())
    lines = [
        f"Per device (a mesh of {mesh}): {format_count(one.flops)} FLOPs = {format_count(one.macs)} MACs, "
        f"weights {format_count(one.weight_bytes)}B, its link carries {format_count(one.collective_bytes)}B",
    ]
    table = one.collectives
    if len(table):
        by_kind = table.groupby("kind").agg(count=("count", "sum"), result_bytes=("result_bytes", "sum"))
        lines += [
            f"  {kind}: {row['count']} ({format_count(row['result_bytes'])}B)"
            for kind, row in by_kind.iterrows()
        ]
    if device is not None:
        step = one.step_bound(device)
        lines.append(
            f"A device's step on {device}: compute {step['compute_s'] * 1e3:.3g} ms, memory "
            f"{step['memory_s'] * 1e3:.3g} ms, communication {step['communication_s'] * 1e3:.3g} ms: "
            f"{step['bound']}-bound"
        )
    return "\n".join(lines)


def _example(name: str):
    import keras

    fn = getattr(keras.applications, name, None)
    if not callable(fn):
        raise CliError(f"{name!r} is not a keras.applications model (try ResNet50, MobileNetV2, VGG16).")
    return fn(weights=None)


def _load(path: str, unsafe: bool, compile: bool = False):
    """The model in ``path``; with ``compile``, with its saved loss and
    optimizer (a training step's memory needs them), where they load."""
    import keras

    if not os.path.exists(path):
        raise CliError(f"{path}: no such file or directory.")
    if os.path.isdir(path):
        raise CliError(f"{path}: a directory, but not a SavedModel (no saved_model.pb in it).")
    if path.endswith(".json"):
        return _from_config(path, unsafe)
    if not path.endswith((".keras", ".h5", ".hdf5")):
        raise CliError(
            f"{path}: not a model file; give a .keras or .h5 file, a SavedModel directory or a .json config."
        )
    try:
        with _loading(path, "loads", "loaded", "load"):
            if compile:
                try:
                    with (
                        warnings.catch_warnings()
                    ):  # the optimizer's variables: its state is counted, not read
                        warnings.simplefilter("ignore", UserWarning)
                        return keras.saving.load_model(path, compile=True, safe_mode=not unsafe)
                except (ValueError, TypeError) as err:
                    if "safe_mode" in str(err) or "Lambda" in str(err):
                        raise
                    # a loss or optimizer that does not load (custom, unregistered): without them
            return keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except OSError as err:
        raise CliError(f"{path}: not a Keras model file ({_first_line(err)}).") from err


@contextlib.contextmanager
def _loading(path: str, verb: str, done: str, infinitive: str):
    """Keras's errors while loading or building a model, as one clear line."""
    try:
        yield
    except (ValueError, TypeError) as err:
        if "safe_mode" in str(err) or "Lambda" in str(err):
            raise CliError(
                f"{path} carries Python code (a Lambda layer), which runs when the model "
                f"{verb}; it was not {done}. If you trust the file, pass --unsafe."
            ) from err
        raise CliError(f"{path}: could not {infinitive} the model: {_first_line(err)}") from err


def _from_config(path: str, unsafe: bool):
    """A model built from its JSON config without allocating its weights."""
    import keras

    import keras_flops

    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise CliError(f"{path}: not a JSON model config ({_first_line(err)}).") from err
    if not (isinstance(config, dict) and "class_name" in config and "config" in config):
        raise CliError(
            f"{path}: not a Keras model config (no class_name and config); give a keras_hub "
            "preset's config.json or what model.to_json() writes."
        )
    if "keras_hub" in f"{config.get('module', '')} {config.get('registered_name', '')}":
        try:
            import keras_hub  # noqa: F401  (registers its classes)
        except ImportError:
            raise CliError(f"{path} is a keras_hub model's config: pip install keras-hub.") from None
    with _loading(path, "is built", "built", "build"), keras_flops.without_weights():
        model = keras.saving.deserialize_keras_object(config, safe_mode=not unsafe)
    if not hasattr(model, "call"):
        raise CliError(f"{path}: the config is of a {type(model).__name__}, not a model.")
    return model


def _lengths(text: str):
    try:
        prompt, max_length = (int(part) for part in text.split(":"))
    except ValueError:
        raise CliError(f"--generate {text!r}: give PROMPT:MAX, e.g. 512:1024.") from None
    return prompt, max_length


def _shapes(texts: Optional[List[str]]):
    """--input-shape values: one shape, or {name: shape} from NAME=DIMS."""
    if not texts:
        return None
    named = [t for t in texts if "=" in t]
    if named and len(named) != len(texts):
        raise CliError("--input-shape: give either one shape or NAME=DIMS for every input.")
    if named:
        return {name.strip(): _dims(dims) for name, dims in (t.split("=", 1) for t in texts)}
    if len(texts) != 1:
        raise CliError("--input-shape: give one shape, or NAME=DIMS once per input.")
    return _dims(texts[0])


def _dims(text: str):
    try:
        return tuple(None if d.strip() in ("", "None") else int(d) for d in text.split(","))
    except ValueError:
        raise CliError(
            f"--input-shape {text!r}: give integers separated by commas, e.g. 224,224,3."
        ) from None


def _message(err: Exception) -> str:
    text = _first_line(err)
    if "input_shape=" in text:
        text += " On the command line: --input-shape, e.g. 224,224,3."
    return text


def _first_line(err: Exception) -> str:
    return first_line(err) or type(err).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
