"""The TensorFlow backend (:mod:`.backend`); the only place keras_flops
imports ``tensorflow`` and ``tf_keras``."""
