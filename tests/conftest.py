import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

# Keep the suite quick and repeatable on small CI machines. The test problems
# are tiny: one thread each for torch and BLAS avoids the two thread pools
# spinning against each other, which costs far more than it gains here.
torch.set_num_threads(1)
threadpool_limits(limits=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
