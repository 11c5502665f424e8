import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.chdir(ROOT)  # tests use repository-relative paths (firmware/, docs/)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MNIST = ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_test():
    """First 8,000 MNIST test digits (uint8 (N,28,28), labels) from ../shared, or skip."""
    import gzip

    img, lab = MNIST / "test8k-images-idx3-ubyte.gz", MNIST / "test8k-labels-idx1-ubyte.gz"
    if not img.exists():
        pytest.skip(f"{img} not present (../shared/data/mnist)")
    x = np.frombuffer(gzip.open(img).read(), np.uint8, offset=16).reshape(-1, 28, 28)
    y = np.frombuffer(gzip.open(lab).read(), np.uint8, offset=8)
    return x, y


@pytest.fixture(scope="module")
def private_board_state(tmp_path_factory):
    """A private EDGEQ_STATE_DIR for one test module; boards it starts are stopped at the end."""
    from edgeq.deploy import boards

    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEQ_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    yield
    for r in boards.running():
        boards.stop(r.name)
    mp.undo()
