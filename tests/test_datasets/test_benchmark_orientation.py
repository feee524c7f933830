"""Benchmark images are read as stored, whatever their EXIF orientation.

COCO's masks are drawn from polygons at the ``height`` x ``width`` of its
JSON, i.e. on the stored pixels, and the reference DCAMA reads its images
with ``PIL.Image.open(...).convert('RGB')``, which does not apply the EXIF
orientation either. A COCO photo that carries an orientation tag must
therefore be read unturned: turned (as phone photos are for inference and
folder datasets), a tag of 6 makes the image 90 degrees off its mask (the
episode fails) and a tag of 3 silently pairs an upside-down image with its
mask.
"""
import shutil

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from dcama_mm.datasets import COCO20iDataset
from dcama_mm.datasets.transforms import LoadEpisode
from dcama_mm.datasets.transforms.image_modes import decode_image

init_default_scope('mmseg')


def _tag(path: str, orientation: int) -> np.ndarray:
    """Re-save ``path`` (a JPEG) with an EXIF orientation; the stored
    pixels as the reference reads them (PIL, no transpose), BGR."""
    img = Image.open(path).convert('RGB')
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, quality=95, exif=exif)
    return np.asarray(Image.open(path).convert('RGB'))[..., ::-1]


@pytest.mark.parametrize('orientation', [3, 6])
def test_coco_images_are_read_as_stored(coco_root, tmp_path, orientation):
    root = str(tmp_path / 'coco')
    shutil.copytree(coco_root, root)
    ds = COCO20iDataset(fold=1, shots=1, data_root=root, seed=5,
                        pipeline=[])
    episode = ds.get_episode_info(0)
    stored = _tag(episode['img_path'], orientation)
    support = _tag(episode['support_img_paths'][0], orientation)
    assert stored.shape[0] != stored.shape[1]  # a turn shows in the shape
    loaded = LoadEpisode()(episode)
    img = loaded['img']
    assert img.shape == stored.shape == loaded['gt_seg_map'].shape + (3, )
    assert np.abs(img.astype(int) - stored).mean() < 1.0
    if orientation == 3:  # and not the upside-down picture
        assert np.abs(img.astype(int) - np.rot90(stored, 2)).mean() > 10
    assert loaded['support_imgs'][0].shape == support.shape
    # what inference and folder datasets do: upright, as displayed
    with open(episode['img_path'], 'rb') as f:
        content = f.read()
    upright = decode_image(content, 'image', exif_orientation=True)
    if orientation == 3:
        assert np.abs(upright.astype(int) - np.rot90(stored, 2)).mean() < 1
    else:
        assert upright.shape == (stored.shape[1], stored.shape[0], 3)
    as_stored = decode_image(content, 'image', exif_orientation=False)
    assert np.abs(as_stored.astype(int) - stored).mean() < 1.0
    assert ds.get_episode_info(0)['exif_orientation'] is False
