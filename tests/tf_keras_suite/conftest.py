import os

import pytest

if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
    pytest.skip("run with TF_USE_LEGACY_KERAS=1 (tests/test_tf_keras.py does)", allow_module_level=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
