"""Fixtures of the API tests: a tiny random DCAMA, an inferencer of it and
a small episode written as PNG files (module-scoped: built once per test
module; a module may define its own to override them)."""
from typing import Tuple

import pytest
import torch.nn as nn

from dcama_mm.apis import FewShotInferencer
from tests.test_apis.inferencer_helpers import (NET_SIZE, build_tiny_model,
                                                write_episode_files)


@pytest.fixture(scope='module')
def tiny_model() -> nn.Module:
    """:func:`~tests.test_apis.inferencer_helpers.build_tiny_model`."""
    return build_tiny_model()


@pytest.fixture(scope='module')
def inferencer(tiny_model) -> FewShotInferencer:
    """An inferencer of ``tiny_model`` on the CPU at ``NET_SIZE``."""
    return FewShotInferencer(tiny_model, device='cpu', img_size=NET_SIZE)


@pytest.fixture(scope='module')
def episode_dir(tmp_path_factory) -> Tuple[str, list, list, list]:
    """``(root, support images, support masks, queries)``: 5 supports with
    0/255 masks and 3 queries of odd, non-square sizes."""
    root = str(tmp_path_factory.mktemp('episode'))
    sizes = [(37, 53), (48, 96), (71, 41)]
    support_imgs, support_masks, queries = write_episode_files(
        root, shots=5, query_sizes=sizes)
    return root, support_imgs, support_masks, queries
