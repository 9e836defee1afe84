"""An mkdocs hook (mkdocs.yml's ``hooks``): before the pages are read, draw the
guides' figures with keras_flops (draw_figures.py, in a JAX process of its own)
and add them to the site as ``figures/NAME.png``. A failure fails the build."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

SCRIPT = Path(__file__).with_name("draw_figures.py")


def on_files(files, config):
    out = Path(tempfile.mkdtemp(prefix="keras_flops_figures_"))
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(out)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise PluginError(f"{SCRIPT.name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    for png in sorted(out.glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    return files
