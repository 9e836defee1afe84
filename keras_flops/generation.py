"""What generating costs: the prefill and one decode step of a language model.

keras_hub's ``generate()`` pads the prompt to ``max_length``, fills the
key/value cache by running the model over all of it (the prefill, its
``_build_cache``), then loops ``max_length - prompt_length`` times over one
step: one token through ``call_with_cache``, attending over the whole
fixed-size cache, and the sampler picking the next token. Both are traced
from keras_hub's own functions and counted per layer; generation's cost is
the prefill plus the steps times one step.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import warnings
from typing import Optional

import pandas as pd

from keras_flops import _compat, backends
from keras_flops.core import chains as chain_programs
from keras_flops.core import collector, inputs, moe
from keras_flops.core.layers import steady
from keras_flops.core.reuse import chains_in_graph
from keras_flops.core.memory import MemoryReport, capacity, layer_weights, spec_bytes, weights_by_dtype
from keras_flops.core.records import LayerRow
from keras_flops.core.report import FlopsReport
from keras_flops.core.assemble import build_report
from keras_flops.errors import ProfileError, UncountedOpsWarning, reason
from keras_flops.render.text import format_count

SAMPLER = "(sampler)"  # the row of the sampler's ops in a decode step


@dataclasses.dataclass(frozen=True)
class GenerationReport:
    """The cost of one ``generate()`` call: ``prefill`` (a FlopsReport),
    ``decode`` (a FlopsReport of one step, for the whole batch) and
    ``steps``, the tokens generated per sequence."""

    model_name: str
    batch_size: int
    prompt_length: int
    max_length: int
    prefill: FlopsReport
    decode: FlopsReport
    notes: tuple = ()
    kv_cache_bytes: int = 0  # the whole key/value cache, read from the cache tensor's spec
    weights: tuple = ()  # ((dtype, bytes), ...) of the model's variables at their stored width
    layer_weights: tuple = ()  # ((layer, bytes), ...) of the weights each layer holds itself

    @property
    def memory(self) -> MemoryReport:
        """The memory generating needs: the weights, the token ids, the
        key/value cache, and the largest transient of the prefill or a decode
        step (values live at once beside the cache and the step's results).
        ``gen.memory.fits("H100")`` says whether it fits."""
        transient = max(self.prefill.activations.transient, self.decode.activations.transient)
        return MemoryReport(
            model_name=self.model_name,
            batch_size=self.batch_size,
            training=False,
            weights=dict(self.weights),
            inputs=self.batch_size * self.max_length * 4,  # int32 token ids
            kv_cache=self.kv_cache_bytes,
            transient=transient,
            layer_weights=self.layer_weights,
            notes=(f"For generations of max_length {self.max_length}: the cache holds every position.",),
        )

    @property
    def steps(self) -> int:
        """Tokens generated per sequence: ``max_length - prompt_length``."""
        return self.max_length - self.prompt_length

    @property
    def flops(self) -> int:
        """FLOPs of the whole ``generate()`` call: prefill + steps x decode."""
        return self.prefill.flops + self.steps * self.decode.flops

    @property
    def macs(self) -> int:
        return self.prefill.macs + self.steps * self.decode.macs

    @property
    def flops_per_token(self) -> float:
        """Decode FLOPs per generated token, per sequence."""
        return self.decode.flops / self.batch_size

    @property
    def macs_per_token(self) -> float:
        return self.decode.macs / self.batch_size

    def to_dataframe(self) -> pd.DataFrame:
        """Per layer: the prefill's and one decode step's FLOPs and MACs, side
        by side, and the whole generation's (prefill + steps x decode)."""
        prefill = self.prefill.to_dataframe()[["class", "flops", "macs"]]
        decode = self.decode.to_dataframe()[["class", "flops", "macs"]]
        df = prefill.join(decode, how="outer", lsuffix="_prefill", rsuffix="_decode")
        df["class"] = df["class_prefill"].fillna(df["class_decode"])
        for column in ("flops_prefill", "macs_prefill", "flops_decode", "macs_decode"):
            df[column] = df[column].fillna(0).astype("int64")
        df["flops_total"] = df["flops_prefill"] + self.steps * df["flops_decode"]
        df["macs_total"] = df["macs_prefill"] + self.steps * df["macs_decode"]
        order = list(prefill.index) + [i for i in decode.index if i not in prefill.index]
        columns = [
            "class",
            "flops_prefill",
            "macs_prefill",
            "flops_decode",
            "macs_decode",
            "flops_total",
            "macs_total",
        ]
        return df.loc[order, columns]

    def roofline(self, device, dtype: Optional[str] = None, traffic: str = "min") -> "GenerationRoofline":
        """The generation on ``device`` (a GPU name or a ``keras_flops.Device``):
        the prefill's and one decode step's roofline times (each layer's
        ``max(flops / peak, bytes / bandwidth)``, summed; ``traffic`` and
        ``dtype`` as in ``FlopsReport.roofline``), which bound holds in each,
        and the batch's tokens per second while decoding."""
        prefill, decode = (part.roofline(device, dtype, traffic) for part in (self.prefill, self.decode))
        (prefill_s, prefill_bound), (step_s, step_bound) = _phase(prefill), _phase(decode)
        name = prefill.attrs["device"].name
        return GenerationRoofline(
            device=name,
            traffic=traffic,
            batch_size=self.batch_size,
            steps=self.steps,
            prefill_s=prefill_s,
            prefill_bound=prefill_bound,
            decode_step_s=step_s,
            decode_bound=step_bound,
            decode_min_bytes=self.decode.min_bytes,
            kv_cache_bytes=self.kv_cache_bytes,
        )

    def plot(self, device, path=None, ax=None, traffic: str = "min"):
        """The prefill's and a decode step's layers on one roofline of
        ``device``: one point per layer and phase. Shown, or written to
        ``path``; returns the Figure (needs matplotlib)."""
        from keras_flops.render import plot

        return plot.generation_roofline(self, device, path=path, ax=ax, traffic=traffic)

    def to_dict(self, device=None) -> dict:
        """Plain JSON types: the totals, and the prefill's and decode step's
        reports; with ``device``, the generation's roofline there too."""
        extra = {"roofline": self.roofline(device).to_dict()} if device is not None else {}
        return {
            "schema": "keras_flops.generation",
            "model": self.model_name,
            "batch_size": self.batch_size,
            "prompt_length": self.prompt_length,
            "max_length": self.max_length,
            "steps": self.steps,
            "flops": self.flops,
            "macs": self.macs,
            "flops_per_token": self.flops_per_token,
            "macs_per_token": self.macs_per_token,
            "kv_cache_bytes": self.kv_cache_bytes,
            "memory": self.memory.to_dict(
                device=device if device is not None and _has_memory(device) else None
            ),
            "prefill": self.prefill.to_dict(),
            "decode": self.decode.to_dict(),
            "notes": list(self.notes),
            **extra,
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        df = self.to_dataframe()
        shown = df.copy()
        for column in df.columns[1:]:
            shown[column] = [f"{v:,}" for v in df[column]]
        lines = [
            f"Generation with {self.model_name!r}: batch {self.batch_size}, prompt "
            f"{self.prompt_length}, max_length {self.max_length} ({self.steps} steps)",
            shown.to_string(),
            f"Prefill: {format_count(self.prefill.flops)} FLOPs ({self.prefill.flops:,}), "
            f"{format_count(self.prefill.macs)} MACs",
            f"Decode: {format_count(self.decode.flops)} FLOPs ({self.decode.flops:,}) per step, "
            f"{format_count(self.flops_per_token)} per token per sequence",
            f"Total: {format_count(self.flops)} FLOPs ({self.flops:,}) = prefill + "
            f"{self.steps} x decode; {format_count(self.macs)} MACs ({self.macs:,})",
            f"Bytes per decode step: {format_count(self.decode.min_bytes)}B compulsory "
            f"({self.decode.min_bytes:,}); KV cache {format_count(self.kv_cache_bytes)}B "
            f"({self.kv_cache_bytes:,})",
            f"Memory: {format_count(self.memory.peak)}B ({self.memory.peak:,}): weights, cache and "
            "the largest transient",
        ]
        return "\n".join(lines + list(self.notes))

    def __repr__(self) -> str:
        return (
            f"GenerationReport(model={self.model_name!r}, batch_size={self.batch_size}, "
            f"prompt_length={self.prompt_length}, max_length={self.max_length}, "
            f"flops={self.flops}, macs={self.macs})"
        )


@dataclasses.dataclass(frozen=True)
class GenerationRoofline:
    """A generation's roofline on one device: the prefill's time, one decode
    step's, which bound holds in each ("compute" or "memory"), and what
    follows: tokens per second for the batch while decoding, and the whole
    ``generate()`` call's time."""

    device: str
    traffic: str
    batch_size: int
    steps: int
    prefill_s: float
    prefill_bound: str
    decode_step_s: float
    decode_bound: str
    decode_min_bytes: int
    kv_cache_bytes: int

    @property
    def tokens_per_s(self) -> float:
        """Tokens the batch generates per second while decoding: batch / step time."""
        return self.batch_size / self.decode_step_s if self.decode_step_s else math.inf

    @property
    def total_s(self) -> float:
        """The whole ``generate()`` call: prefill + steps x decode step."""
        return self.prefill_s + self.steps * self.decode_step_s

    def to_dict(self) -> dict:
        fields = dataclasses.asdict(self)
        return {**fields, "tokens_per_s": self.tokens_per_s, "total_s": self.total_s}

    def __str__(self) -> str:
        return "\n".join(
            [
                f"Roofline on {self.device} ({self.traffic} traffic):",
                f"  prefill {self.prefill_s * 1e3:.3g} ms, {self.prefill_bound}-bound",
                f"  decode {self.decode_step_s * 1e3:.3g} ms per step, {self.decode_bound}-bound: "
                f"{self.tokens_per_s:,.0f} tokens/s for the batch of {self.batch_size}",
                f"  generate(): {self.total_s * 1e3:.3g} ms for {self.steps} steps",
            ]
        )


def _has_memory(device) -> bool:
    """Whether a device's memory size is known (a roofline needs only its peak)."""
    try:
        capacity(device)
    except (TypeError, ValueError):
        return False
    return True


def _phase(roofline: pd.DataFrame):
    """(seconds, bound) of a phase: its layers' roofline times summed, and the
    bound of the layers that take most of them."""
    time = roofline.groupby("bound")["time_s"].sum()
    bound = "compute" if time.get("compute", 0.0) >= time.get("memory", 0.0) else "memory"
    return float(roofline.attrs["time_s"]), bound


def causal_lm_for(model):
    """``model`` if it generates; a keras_hub Backbone wrapped in its CausalLM
    (``GPT2Backbone`` -> ``GPT2CausalLM``, no preprocessor) otherwise."""
    if callable(getattr(model, "call_with_cache", None)):
        return model
    name = type(model).__name__
    if name.endswith("Backbone"):
        try:
            import keras_hub

            task = getattr(keras_hub.models, name[: -len("Backbone")] + "CausalLM", None)
        except ImportError:
            task = None
        if task is not None:
            return task(backbone=model, preprocessor=None)  # outside any stateless scope: it compiles
    return model


@collector.pausing
@steady()
def profile_generation(
    causal_lm,
    prompt_length: int,
    max_length: int,
    batch_size: int = 1,
    *,
    warn: bool = True,
    reuse: bool = True,
) -> GenerationReport:
    """Count what ``causal_lm.generate()`` runs for prompts of ``prompt_length``
    tokens generated up to ``max_length``, for a batch of ``batch_size``.

    Works on any keras_hub ``CausalLM`` whose prefill takes the token ids
    (GPT-2, Llama, Gemma, Mistral, Qwen, ...), and on any model that follows
    the same ``call_with_cache`` protocol; also on models built without
    weights (``keras_flops.without_weights()``). A model's decoder blocks,
    four or more alike, are traced two in the prefill (the first and the
    last) and one in a decode step, the others passed through and counted as
    run where they stand, exactly (:mod:`keras_flops.core.chains`); where that
    cannot be exact, every block is traced and ``notes`` says why.
    ``reuse=False`` traces every block.
    """
    batch_size = _check_lengths(batch_size, prompt_length, max_length)
    prefill_fn = prefill_function(causal_lm)
    backend = backends.of(causal_lm)
    tokens = backend.spec((batch_size, max_length), "int32", name="token_ids")
    found = _chains(causal_lm, backend) if reuse else []
    # the prefill returns the hidden states, which the final norm writes into the last block's output
    # (its buffer): its last block is traced
    prefill = _counted(backend, causal_lm, lambda ids, region: prefill_fn(ids), [tokens], "prefill", found)
    _, cache_spec = prefill[0].outputs
    index = backend.spec((), "int32", name="cache_update_index")
    decode = _counted(
        backend,
        causal_lm,
        decode_step(causal_lm, batch_size),
        [tokens, cache_spec, index],
        "decode step",
        found,
        keep_last=False,  # it returns the next token and the cache
    )
    notes = (
        f"keras_hub pads the prompt to max_length: the prefill runs the model over all "
        f"{max_length} positions, and each of the {max_length - prompt_length} decode steps "
        f"runs one token per sequence attending over the whole cache of {max_length} "
        "positions. Counted as it runs.",
    )
    experts = moe.find(causal_lm)
    report = GenerationReport(
        model_name=causal_lm.name,
        batch_size=batch_size,
        prompt_length=prompt_length,
        max_length=max_length,
        prefill=_report(backend, causal_lm, prefill, batch_size, tokens, experts),
        decode=_report(backend, causal_lm, decode, batch_size, tokens, experts),
        notes=notes,
        kv_cache_bytes=spec_bytes(cache_spec, backend.flatten),
        weights=tuple(weights_by_dtype(causal_lm.variables).items()),
        layer_weights=layer_weights(causal_lm),
    )
    if warn:
        for part in (report.prefill, report.decode):
            if part.uncounted:
                warnings.warn(part.uncounted_summary(), UncountedOpsWarning, stacklevel=2)
    return report


def _check_lengths(batch_size, prompt_length, max_length) -> int:
    """The batch size, checked, once the lengths are positive ints and the prompt fits."""
    batch_size = inputs.check_batch_size(batch_size)
    for name, value in (("prompt_length", prompt_length), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if prompt_length > max_length:
        raise ValueError(f"prompt_length {prompt_length} is longer than max_length {max_length}.")
    return batch_size


def decode_step(causal_lm, batch_size: int):
    """One step of ``generate()``'s loop, as a function of (prompt, cache,
    index, region): the token at ``index`` through ``call_with_cache``, and
    the sampler's choice of the next one (a row of its own, ``SAMPLER``)."""
    import keras

    ops = keras.ops
    sampler = getattr(causal_lm, "sampler", None)

    def step(prompt, cache, index, region):
        token = ops.slice(prompt, [0, index], [batch_size, 1])
        logits, _, cache = causal_lm.call_with_cache(token, cache, index)
        if sampler is not None:
            with region(SAMPLER):
                probabilities = sampler.compute_probabilities(ops.squeeze(logits, axis=1))
                next_token = sampler.get_next_token(probabilities)
            return next_token, cache
        return logits, cache

    return step


def prefill_function(causal_lm):
    """The function ``generate()`` runs on the prompt to fill the cache, or a
    clear error naming what is missing."""
    prefill = _compat.build_cache(causal_lm)
    if not callable(getattr(causal_lm, "call_with_cache", None)) or prefill is None:
        missing = [
            n
            for n, f in (
                ("call_with_cache", getattr(causal_lm, "call_with_cache", None)),
                ("_build_cache", prefill),
            )
            if not callable(f)
        ]
        raise TypeError(
            f"{type(causal_lm).__name__} {getattr(causal_lm, 'name', '')!r} has no "
            f"{' and no '.join(missing)}: profile_generation needs a keras_hub CausalLM (or a "
            "model with the same protocol: _build_cache(token_ids) -> (hidden_states, cache) and "
            "call_with_cache(token_ids, cache, cache_update_index) -> (logits, hidden_states, "
            "cache)). For one forward pass, use keras_flops.profile."
        )
    required = [
        p
        for p in inspect.signature(prefill).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    if len(required) != 1:
        names = ", ".join(p.name for p in required)
        raise TypeError(
            f"{type(causal_lm).__name__}'s prefill takes ({names}), not the token ids alone: "
            "profile_generation counts text-only language models (images and other inputs "
            "to the prefill are not supported yet)."
        )
    return prefill


def _chains(causal_lm, backend) -> list:
    """The long chains of like calls of the model's layer graph (its decoder
    blocks), which ``call_with_cache`` calls in the same order; none where
    they cannot be found."""
    return chain_programs.to_shorten(chains_in_graph(causal_lm, backend))


def _counted(backend, model, call, specs, what: str, found, keep_last: bool = True):
    """``(trace, counted)`` of ``call``: from programs with fewer calls of
    the ``found`` chains where that is exact (:mod:`keras_flops.core.chains`),
    else of the whole program, with a note saying why."""
    why = None
    if found:
        by_chains = chain_programs.count_by_chains(
            model,
            found,
            lambda passthrough: backend.trace_call(model, call, specs, passthrough=passthrough),
            lambda traced, standing: backend.count(traced, memory=standing or True),
            read_as_run=True,
            keep_last=keep_last,
        )
        if isinstance(by_chains, tuple):
            return by_chains
        why = by_chains
    traced = _traced(backend, model, call, specs, what)
    counted = backend.count(traced, memory=True)  # its transient: gen.memory
    if why is not None:
        counted = dataclasses.replace(
            counted, notes=counted.notes + (f"Traced every call of a chain of like calls: {why}.",)
        )
    return traced, counted


def _traced(backend, model, call, specs, what: str):
    try:
        return backend.trace_call(model, call, specs)
    except Exception as err:
        raise ProfileError(
            f"Tracing the {what} of {type(model).__name__} {model.name!r} failed: {reason(err)}"
        ) from err


def _report(backend, model, counted_trace, batch_size: int, tokens, experts) -> FlopsReport:
    traced, counted = counted_trace
    sampler = ()
    if any(op.layer == SAMPLER for op in counted.ops):
        sampler = (LayerRow(SAMPLER, type(getattr(model, "sampler", None)).__name__, None, 0, 1),)
    return build_report(
        model,
        traced,
        counted,
        backend,
        batch_size=batch_size,
        input_shapes=(("token_ids", tuple(int(d) for d in tokens.shape)),),
        extra_layers=sampler,
        experts=experts,
    )
