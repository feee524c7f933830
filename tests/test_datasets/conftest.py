"""Fixtures shared by the dataset tests."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build transforms and datasets from mmseg's registries."""
    init_default_scope('mmseg')
