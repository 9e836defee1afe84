"""Every private Keras and PyTorch name the PyTorch backend reads, one test
each, so that a release that renames one fails here, by name."""

import keras
import torch

from keras_flops import _compat
from keras_flops.backends.torch import _compat as torch_compat


def test_keras_places_tensors_on_the_device_it_is_given():
    # keras.src.backend.common.global_state's "torch_device", read by get_device()
    meta = torch.device("meta")
    with torch_compat.torch_device(meta):
        t = keras.ops.convert_to_tensor([1.0, 2.0])
        assert t.device == meta
        x = torch.empty((2,), device=meta).requires_grad_(True)
        # a meta tensor passes through convert_to_tensor as it is: still on autograd's graph
        assert keras.ops.convert_to_tensor(x) is x
    assert keras.ops.convert_to_tensor([1.0]).device != meta


def test_the_dispatch_mode_sees_aten_ops():
    seen = []

    class Seen(torch_compat.torch_dispatch_mode()):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func._overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    a = torch.empty((2, 3), device="meta")
    with Seen():
        a @ a.T
    assert "mm" in seen


def test_the_running_autograd_node_is_known_in_backward():
    current = torch_compat.current_autograd_node()
    assert current() is None
    found = []

    class Seen(torch_compat.torch_dispatch_mode()):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            node = current()
            found.append(type(node).__name__ if node is not None else None)
            return func(*args, **(kwargs or {}))

    x = torch.ones((2, 2), requires_grad=True)
    y = (x * x).sum()
    with Seen():
        y.backward()
    assert "MulBackward0" in found


def test_random_ops_draw_without_a_generator_while_tracing():
    # keras.src.backend.torch.random.torch_seed_generator
    from keras.src.backend.torch import random as torch_random

    original = torch_random.torch_seed_generator
    with torch_compat.no_torch_generators():
        assert torch_random.torch_seed_generator(keras.random.SeedGenerator(1)) is None
    assert torch_random.torch_seed_generator is original


def test_an_aten_ops_name_and_schema():
    # OpOverload._overloadpacket and OpOverload._schema
    name, schema = torch_compat.aten_schema(torch.ops.aten.add_.Tensor)
    assert name == "add_"
    first = schema.arguments[0]
    assert first.name == "self" and first.alias_info.is_write
    name, schema = torch_compat.aten_schema(torch.ops.aten.convolution.default)
    assert name == "convolution"
    assert [a.name for a in schema.arguments][:3] == ["input", "weight", "bias"]
    assert not schema.arguments[0].alias_info


def test_a_view_is_known():
    # Tensor._is_view
    t = torch.empty((4, 4), device="meta")
    assert torch_compat.is_view(t[1:]) and not torch_compat.is_view(t)


def test_a_views_base_is_known():
    # Tensor._base: the tensor an op in place on a view gives a new autograd node
    t = torch.empty((4, 4), device="meta")
    assert torch_compat.view_base(t[1:]) is t and torch_compat.view_base(t) is None


def test_a_deferred_variable_reads_as_meta_zeros():
    # keras.Variable._initializer, called by Variable.value while it has no value
    with keras.StatelessScope(initialize_variables=False):
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
    kernel = layer.kernel
    _compat.keep_deferred([kernel])
    torch_compat.read_as_meta([kernel])
    assert kernel.value.device.type == "meta" and tuple(kernel.value.shape) == (4, 3)
    assert not _compat.is_allocated(kernel)
