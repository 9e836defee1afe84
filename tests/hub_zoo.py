"""keras_hub models built from small configs, without weights: every exported
backbone from keras-hub's own test configs (tests/data/keras_hub_backbones.json),
and task models people train, wrapped around those backbones. Shared by the
TensorFlow suite and the differential cases (tests/jax_suite/cases.py)."""

import copy
import json
import pathlib

import keras

import keras_flops

# {name: {"config", "inputs"}}, the inputs as [per-sample shape, dtype] in the
# model's input structure.
ZOO = json.loads((pathlib.Path(__file__).parent / "data" / "keras_hub_backbones.json").read_text())
# It branches in Python on its num_steps input: its parts are profiled instead.
BRANCHES_ON_VALUES = {"StableDiffusion3Backbone"}
TRACEABLE = sorted(set(ZOO) - BRANCHES_ON_VALUES)


def build(name, weights=False):
    """The backbone ``name`` of the zoo, built without weights (with them: ``weights``)."""
    config = copy.deepcopy(ZOO[name]["config"])  # deserializing fills nested configs with objects
    if weights:
        return keras.saving.deserialize_keras_object(config)
    with keras_flops.without_weights():
        return keras.saving.deserialize_keras_object(config)


def input_shape(name):
    """The per-sample input shapes of backbone ``name``, in its input structure."""
    inputs = ZOO[name]["inputs"]
    if isinstance(inputs, dict):
        return {k: tuple(shape) for k, (shape, _) in inputs.items()}
    if len(inputs) == 2 and isinstance(inputs[1], str):
        return tuple(inputs[0])
    return [tuple(shape) for shape, _ in inputs]


# Task models people train: {name: (task class in keras_hub.models, backbone, extra arguments)}.
TASKS = {
    "GPT2CausalLM": ("GPT2CausalLM", "GPT2Backbone", {}),
    "LlamaCausalLM": ("LlamaCausalLM", "LlamaBackbone", {}),
    "GemmaCausalLM": ("GemmaCausalLM", "GemmaBackbone", {}),
    "MistralCausalLM": ("MistralCausalLM", "MistralBackbone", {}),
    "QwenCausalLM": ("QwenCausalLM", "QwenBackbone", {}),
    "MixtralCausalLM": ("MixtralCausalLM", "MixtralBackbone", {}),
    "BertTextClassifier": ("BertTextClassifier", "BertBackbone", {"num_classes": 3}),
    "RobertaTextClassifier": ("RobertaTextClassifier", "RobertaBackbone", {"num_classes": 3}),
    "ResNetImageClassifier": ("ResNetImageClassifier", "ResNetBackbone", {"num_classes": 3}),
    "BartSeq2SeqLM": ("BartSeq2SeqLM", "BartBackbone", {}),
}


def build_task(name):
    """(task model ``name`` around its zoo backbone, the backbone built
    without weights, compiled with the task's default loss; the backbone's
    input shapes)."""
    import keras_hub

    task, backbone, kwargs = TASKS[name]
    # On PyTorch, Keras tracks every variable of a built model as a torch
    # Parameter requiring a gradient: a task built around a backbone without
    # weights fails there on an integer variable (a dropout's seed). The test
    # configs are small; the counts do not depend on the weights.
    weights = keras.config.backend() == "torch"
    model = getattr(keras_hub.models, task)(backbone=build(backbone, weights), preprocessor=None, **kwargs)
    return model, input_shape(backbone)
