"""Sentence embeddings on the bundled all-MiniLM-L6-v2."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from gravity_core.embeddings import Embedder

pytestmark = pytest.mark.model


def test_encodes_unit_rows_of_the_models_dimension_without_deprecation_warnings() -> None:
    # sentence-transformers 5 warns when the old name of the dimension method is called: every service that
    # embeds wrote that FutureWarning into its JSON log.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        embedder = Embedder()
        vectors = embedder.encode(["a quiet novel about a lighthouse", "a loud thriller"])
    assert embedder.dim == 384 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_loading_the_model_draws_no_progress_bar() -> None:
    """Loaded in a new process (this one may hold it already): the weight-loading bar was the one line in the
    generator's, judge's and pair generator's JSON logs that was not JSON."""
    code = "from gravity_core.embeddings import Embedder\nEmbedder()\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Loading weights" not in out.stderr
