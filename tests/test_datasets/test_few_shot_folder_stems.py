"""FewShotFolderDataset: two images of one stem (``a.jpg`` and ``a.png``)
would share the one mask ``a_mask.png``; the dataset refuses them."""
import os
import os.path as osp
import shutil

import pytest
from PIL import Image

from dcama_mm.datasets import FewShotFolderDataset
from dcama_mm.datasets.synthetic import make_synthetic_class_folders


@pytest.fixture
def root(tmp_path):
    root = str(tmp_path / 'mine')
    make_synthetic_class_folders(root, num_classes=3, images_per_class=4,
                                 size_range=(40, 56), seed=2)
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_01\n')
    return root


def _build(root):
    return FewShotFolderDataset(data_root=root, split='test',
                                split_files=dict(test='test.txt'))


def test_two_images_of_one_stem_are_refused_naming_both(root):
    folder = osp.join(root, 'thing_01')
    image = sorted(f for f in os.listdir(folder)
                   if not f.endswith('_mask.png'))[0]
    stem, ext = osp.splitext(image)
    other = stem + ('.png' if ext != '.png' else '.jpg')
    Image.open(osp.join(folder, image)).convert('RGB').save(
        osp.join(folder, other))
    # a user's different photo: its own content, the same stem
    with pytest.raises(ValueError) as err:
        _build(root)
    message = str(err.value)
    for name in (image, other, stem + '_mask.png', folder):
        assert repr(name) in message, (name, message)
    assert 'Rename one of them' in message


def test_distinct_stems_of_mixed_extensions_are_kept(root):
    """``b.jpg`` next to ``a.png``: one mask each, nothing refused."""
    folder = osp.join(root, 'thing_01')
    image = sorted(f for f in os.listdir(folder)
                   if not f.endswith('_mask.png'))[0]
    stem, ext = osp.splitext(image)
    new = 'renamed' + ('.png' if ext != '.png' else '.jpg')
    Image.open(osp.join(folder, image)).convert('RGB').save(
        osp.join(folder, new))
    shutil.copy(osp.join(folder, stem + '_mask.png'),
                osp.join(folder, 'renamed_mask.png'))
    dataset = _build(root)
    # one test episode per image: each query with its own mask
    pairs = {(info['img_path'], info['seg_map_path'])
             for info in map(dataset.get_episode_info, range(len(dataset)))}
    assert len(pairs) == 5
    assert len({mask for _, mask in pairs}) == 5
    assert (osp.join(folder, new),
            osp.join(folder, 'renamed_mask.png')) in pairs
