"""Fixtures shared by the dataset tests."""
import pytest
from mmengine.registry import init_default_scope

from .coco_helpers import make_converted_coco


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build transforms and datasets from mmseg's registries."""
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """A small COCO 2014 in the real format, converted to COCO-20i (one per
    test module)."""
    root = str(tmp_path_factory.mktemp('coco'))
    make_converted_coco(root)
    return root
