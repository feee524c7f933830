"""The one rule for reading a binary mask (datasets, inference, tests)."""
import numpy as np
import pytest
from PIL import Image

from dcama_mm.datasets.transforms import LoadEpisode
from dcama_mm.datasets.transforms.binary_mask import to_binary_mask

SQUARE = np.zeros((6, 6), bool)
SQUARE[1:4, 2:5] = True


@pytest.mark.parametrize('mask', [
    SQUARE.astype(np.uint8),  # 0/1
    SQUARE.astype(np.uint8) * 255,  # 0/255
    np.where(SQUARE, 200, 60).astype(np.uint8),  # soft: cut at 128
    SQUARE.astype(np.float32),  # float 0..1
    np.where(SQUARE, 0.9, 0.2),  # soft float 0..1: cut at 0.5
    SQUARE,  # bool
    SQUARE.astype(np.uint16) * 65535,  # 16 bit
    np.stack([SQUARE * 255, SQUARE * 0, SQUARE * 0], axis=2).astype(
        np.uint8),  # a red object on black
    np.dstack([SQUARE * 255, np.full((6, 6), 255)]).astype(
        np.uint8),  # grey + opaque alpha: the grey channel
    np.dstack([SQUARE * 255] * 3 + [np.full((6, 6), 255)]).astype(
        np.uint8),  # RGBA: alpha ignored
])
def test_masks_of_every_kind_give_the_square(mask):
    out = to_binary_mask(mask, 'mask')
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, SQUARE.astype(np.uint8))


def test_the_callers_array_is_not_changed():
    mask = SQUARE.astype(np.uint8) * 255
    to_binary_mask(mask, 'mask')
    assert mask.max() == 255


@pytest.mark.parametrize('mask, match', [
    (np.full((4, 4), -1, np.int16), 'outside 0..65535'),
    (np.full((4, 4), np.nan), 'outside 0..65535'),
    (np.zeros((2, 2, 2, 2), np.uint8), 'HxW'),
    (np.array([['a', 'b']]), 'outside'),
])
def test_bad_masks_are_refused_with_their_name(mask, match):
    with pytest.raises(ValueError, match=f"mask 'm.png'.*{match}|{match}"):
        to_binary_mask(mask, "mask 'm.png'")


def test_load_episode_reads_binary_files_by_the_rule(tmp_path):
    """Without a lookup table LoadEpisode applies the rule to files: a 0/1
    PNG, a 0/255 grey PNG, a 16-bit PNG and an RGBA PNG give one mask."""
    img = np.zeros((6, 6, 3), np.uint8)
    Image.fromarray(img).save(tmp_path / 'img.png')
    files = {
        '01.png': Image.fromarray(SQUARE.astype(np.uint8)),
        '0255.png': Image.fromarray(SQUARE.astype(np.uint8) * 255),
        '16bit.png': Image.fromarray(SQUARE.astype(np.uint16) * 65535),
        'rgba.png': Image.fromarray(
            np.dstack([SQUARE * 255] * 3 + [np.full((6, 6), 255)]).astype(
                np.uint8), 'RGBA'),
    }
    for name, picture in files.items():
        picture.save(tmp_path / name)
    out = LoadEpisode().transform(
        dict(
            img_path=str(tmp_path / 'img.png'),
            seg_map_path=str(tmp_path / '0255.png'),
            support_img_paths=[str(tmp_path / 'img.png')] * len(files),
            support_seg_map_paths=[str(tmp_path / n) for n in files]))
    for mask in [out['gt_seg_map']] + out['support_masks']:
        np.testing.assert_array_equal(mask, SQUARE.astype(np.uint8))
