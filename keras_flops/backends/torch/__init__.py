"""The PyTorch backend: Keras 3 on PyTorch (KERAS_BACKEND=torch)."""
