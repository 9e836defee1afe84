"""PyTorch = TensorFlow, proven by difference (and TensorFlow = JAX is the
JAX suite's): every keras_hub backbone forward, task models and Keras's own
layers in training, counted on both backends (tf_counts comes from a
TensorFlow process).

Per layer, MACs are equal, forward and backward; nothing is uncounted on
either backend; total FLOPs agree within 2%. Where the two run different
arithmetic, the difference is worked out below and in docs/formulas.md:

- a layer reachable along two paths (Gemma3n's text model, SAM's image
  encoder) is reported under the first path Keras's layer tracking reaches,
  and Keras tracks sublayers in another order on PyTorch: where the paths
  differ, layers are compared by their names (unique in a model);
- Keras runs LSTM and GRU on PyTorch as one loop in the layer itself (the
  cell's weights read there), so the cell's row is folded into the layer's;
  PyTorch computes no gradient for the zero initial state, one recurrent
  product fewer than TensorFlow's gradient loop.
"""

import pytest
from cases import EXECUTE_DIFFERENTLY, HUB_CASES, KERAS_TRAINING, RESIZED, TASK_CASES, counts, folded, layer_macs

pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")

# Models keras_flops cannot trace on PyTorch, and why.
NOT_ON_TORCH = {
    # It branches on a tensor's value (keras.ops.cond): PyTorch runs eagerly,
    # so the branch taken needs a value, which meta tensors do not have.
    "hub:SAM3PromptableConceptBackbone",
}
CASES = tuple(c for c in HUB_CASES + TASK_CASES + KERAS_TRAINING + EXECUTE_DIFFERENTLY if c not in NOT_ON_TORCH)

NARROW = {
    "hub:AlbertBackbone", "hub:BertBackbone", "hub:BloomBackbone", "hub:ElectraBackbone",
    "hub:ESMBackbone", "hub:FNetBackbone", "hub:GPT2Backbone", "hub:Gemma3Backbone",
    "hub:Gemma4Backbone", "hub:PaliGemmaBackbone", "hub:DistilBertBackbone", "hub:OPTBackbone",
    "hub:RobertaBackbone", "hub:XLMRobertaBackbone", "hub:BartBackbone", "hub:T5Backbone",
    "hub:XLNetBackbone", "hub:DebertaV3Backbone", "hub:EdRecBackbone",
    # trained with dropout: its masks and scales weigh in these narrow configs
    "task:GPT2CausalLM:train", "task:BertTextClassifier:train", "task:RobertaTextClassifier:train",
    "task:BartSeq2SeqLM:train",
    # its attention is PyTorch's fused scaled_dot_product_attention, priced
    # by one formula (docs/formulas.md), where TensorFlow runs its steps
    "hub:BLIP2Backbone",
}
FUSED_RNN = {"LSTM:train", "GRU:train"}


def _by_name(macs):
    """{layer name: MACs}: the rows keyed by the last part of their paths."""
    named = {}
    for path, row in macs.items():
        name = path.rsplit("/", 1)[-1]
        assert name not in named, f"two layers named {name!r}"
        named[name] = row
    return named


@pytest.mark.parametrize("case", CASES)
def test_torch_equals_tensorflow(tf_counts, case):
    mine, theirs = counts(case), tf_counts[case]
    assert mine["uncounted"] == [] and theirs["uncounted"] == []
    differ = set(theirs["differ"])  # resizes and space-to-batch convolutions, on TensorFlow
    mine_layers, their_layers = mine["layers"], theirs["layers"]
    if case in FUSED_RNN:
        mine_layers, their_layers = folded(mine_layers, "rnn"), folded(their_layers, "rnn")
        # the gradient of the zero initial state: batch 8 x 16 units x 4 (LSTM) or 3 (GRU) gates x 16
        gates = 4 if case == "LSTM:train" else 3
        assert their_layers["rnn"][1] - mine_layers["rnn"][1] == 8 * 16 * gates * 16
        their_layers["rnn"][1] = mine_layers["rnn"][1]
    mine_macs, their_macs = layer_macs(mine_layers, differ), layer_macs(their_layers, differ)
    if set(mine_macs) != set(their_macs):
        mine_macs, their_macs = _by_name(mine_macs), _by_name(their_macs)
    assert mine_macs == their_macs
    if case in RESIZED or differ:
        return
    total = lambda c: c["flops"] + c["backward_flops"]  # noqa: E731
    if case in FUSED_RNN:
        return  # the loop's bookkeeping differs; its MACs are equal above
    bound = 0.12 if case in NARROW else 0.02
    assert abs(total(mine) - total(theirs)) <= bound * total(theirs)
