"""EXIF-rotated photos: sizes are checked as the image is displayed.

Phones save a portrait photo as landscape pixels plus an EXIF Orientation
tag that turns it upright; images are read with the tag applied, so a mask
must match the image as displayed (docs/inputs.md, docs/data_checks.md).
The files here are real JPEGs, PNGs, WebPs and TIFFs written by Pillow
with the tag.
"""
import io
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image, ImageOps

from dcama_mm.datasets import FewShotFolderDataset
from dcama_mm.datasets.transforms import LoadEpisode
from dcama_mm.datasets.transforms.image_modes import decode_image
from .episode_helpers import PIPELINE

#: The size of the pictures as displayed (h, w): portrait.
SHOWN = (28, 20)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _picture(seed: int) -> np.ndarray:
    """A smooth RGB picture (JPEG keeps it close), ``SHOWN`` in size."""
    rng = np.random.RandomState(seed)
    ys, xs = np.mgrid[:SHOWN[0], :SHOWN[1]]
    base = rng.randint(40, 200, size=3)
    return np.clip(base + 3 * ys[..., None] + 2 * xs[..., None], 0,
                   255).astype(np.uint8)


def _save_phone_photo(path: str, shown: np.ndarray) -> None:
    """Save ``shown`` as a phone does: pixels turned 90 degrees, tag 6."""
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)
    stored.save(path, quality=95, exif=_exif(6))
    with Image.open(path) as img:  # the file really shows ``shown``'s size
        assert img.size == (SHOWN[0], SHOWN[1])  # stored (w, h) = (h, w)
        assert ImageOps.exif_transpose(img).size == (SHOWN[1], SHOWN[0])


def _mask(seed: int) -> np.ndarray:
    """A 0/255 mask of the displayed picture: a box in its upper part."""
    mask = np.zeros(SHOWN, np.uint8)
    mask[3 + seed:14, 4:12 + seed] = 255
    return mask


def _phone_folders(root: str, stored_masks: bool = False) -> dict:
    """Two class folders of 2 phone photos each (+ test.txt).

    Returns ``{image path: (displayed picture, mask)}``; with
    ``stored_masks`` the mask files are drawn on the stored pixels."""
    shown = {}
    for c, name in enumerate(('cup', 'pen')):
        folder = osp.join(root, name)
        os.makedirs(folder)
        for i in range(2):
            seed = 2 * c + i
            picture, mask = _picture(seed), _mask(seed)
            path = osp.join(folder, f'{i}.jpg')
            _save_phone_photo(path, picture)
            saved = np.rot90(mask) if stored_masks else mask
            Image.fromarray(np.ascontiguousarray(saved)).save(
                osp.join(folder, f'{i}_mask.png'))
            shown[path] = (picture, mask)
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('cup\npen\n')
    return shown


def _folder_dataset(root: str) -> FewShotFolderDataset:
    return FewShotFolderDataset(
        data_root=root, split='test', shots=1,
        split_files=dict(test='test.txt'), pipeline=PIPELINE)


def test_masks_drawn_on_the_displayed_photo_are_accepted(tmp_path):
    root = str(tmp_path)
    shown = _phone_folders(root)
    dataset = _folder_dataset(root)
    assert len(dataset) == 4
    load = LoadEpisode()
    for index in range(len(dataset)):
        info = dataset.get_episode_info(index)
        picture, mask = shown[info['img_path']]
        loaded = load(info)
        # read as displayed: upright, and the mask's pixels on the object
        assert loaded['img'].shape == SHOWN + (3, )
        diff = np.abs(loaded['img'][..., ::-1].astype(int) - picture)
        assert diff.mean() < 3
        np.testing.assert_array_equal(loaded['gt_seg_map'], mask // 255)
        sample = dataset[index]['data_samples']
        np.testing.assert_array_equal(
            sample.ori_gt_sem_seg.data[0].numpy(), mask // 255)


def test_masks_of_the_stored_pixels_are_refused_at_build(tmp_path):
    root = str(tmp_path)
    _phone_folders(root, stored_masks=True)
    with pytest.raises(
            ValueError,
            match=r"mask '.*cup/0_mask\.png' is 20x28 \(h x w\) but its "
            r"image '.*cup/0\.jpg' is 28x20 as displayed: the image carries "
            r'an EXIF rotation \(Orientation 6\b.*must match the image as '
            r'displayed'):
        _folder_dataset(root)


def test_load_episode_names_the_image_once_and_the_rotation(tmp_path):
    """The check when an episode is loaded (tools/infer.py, datasets
    without a build-time size check) says the same."""
    path = str(tmp_path / 'a.jpg')
    _save_phone_photo(path, _picture(0))
    mask_path = str(tmp_path / 'a_mask.png')
    Image.fromarray(np.ascontiguousarray(np.rot90(_mask(0)))).save(mask_path)
    with pytest.raises(ValueError) as info:
        LoadEpisode()(dict(img_path=path, seg_map_path=mask_path,
                           support_img_paths=[path],
                           support_seg_map_paths=[mask_path]))
    message = str(info.value)
    assert 'image image' not in message
    assert f"has size 20x28 (h x w) but its image '{path}' has size " \
        '28x20' in message
    assert 'EXIF' in message and 'as displayed' in message


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'WEBP', 'TIFF'])
def test_file_size_is_the_size_the_loader_gives(fmt):
    """image_file_size agrees with decode_image for every orientation."""
    from dcama_mm.datasets.transforms.image_modes import image_file_size
    picture = np.zeros((12, 30, 3), np.uint8)
    for orientation in range(1, 9):
        buff = io.BytesIO()
        Image.fromarray(picture).save(buff, format=fmt,
                                      exif=_exif(orientation))
        size = image_file_size(io.BytesIO(buff.getvalue()))
        assert size.stored == (12, 30)
        assert size.orientation == orientation
        for backend in ('cv2', 'pillow'):
            loaded = decode_image(buff.getvalue(), 'image', backend)
            assert size.displayed == loaded.shape[:2], (orientation, backend)


def test_file_size_reads_only_the_header(tmp_path):
    """A photo cut after its header still gives its size (no decoding)."""
    from dcama_mm.datasets.transforms.image_modes import image_file_size
    buff = io.BytesIO()
    Image.fromarray(_picture(1)).transpose(
        Image.Transpose.ROTATE_90).save(buff, format='JPEG',
                                        exif=_exif(6))
    content = buff.getvalue()
    start_of_scan = content.index(b'\xff\xda')
    path = str(tmp_path / 'cut.jpg')
    with open(path, 'wb') as f:  # the header and a few bytes of pixels
        f.write(content[:start_of_scan + 16])
    with pytest.raises(OSError):
        Image.open(path).load()
    size = image_file_size(path)
    assert (size.stored, size.displayed, size.orientation) == (
        (20, 28), (28, 20), 6)
    plain = str(tmp_path / 'plain.png')
    Image.fromarray(_mask(0)).save(plain)
    assert image_file_size(plain).orientation == 1


@pytest.mark.parametrize('orientation', range(1, 9))
def test_apply_orientation_turns_as_pillow_does(orientation):
    from dcama_mm.datasets.transforms.image_modes import apply_orientation
    stored = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    img = Image.fromarray(stored)
    img.getexif()[0x0112] = orientation
    np.testing.assert_array_equal(
        apply_orientation(stored, orientation),
        np.asarray(ImageOps.exif_transpose(img)))


@pytest.mark.parametrize('fmt', ['PNG', 'TIFF', 'WEBP'])
def test_masks_are_read_as_displayed_too(fmt):
    """A mask that keeps its photo's tag (an editor saving it with the
    photo's metadata) is read upright, by either backend."""
    from dcama_mm.datasets.transforms.image_modes import decode_mask
    stored = np.zeros((12, 30), np.uint8)
    stored[2:5, 3:20] = 255
    for orientation in range(1, 9):
        buff = io.BytesIO()
        save = dict(lossless=True) if fmt == 'WEBP' else {}
        Image.fromarray(stored).save(buff, format=fmt,
                                     exif=_exif(orientation), **save)
        with Image.open(io.BytesIO(buff.getvalue())) as img:
            shown = np.asarray(ImageOps.exif_transpose(img).convert('L'))
        for backend in ('pillow', 'cv2'):
            mask, _ = decode_mask(buff.getvalue(), 'mask', backend)
            if mask.ndim == 3:  # WebP is read as colour
                mask = mask[..., 0]
            np.testing.assert_array_equal(mask, shown,
                                          err_msg=f'{orientation} {backend}')


def test_mask_with_the_photos_tag_is_accepted(tmp_path):
    root = str(tmp_path)
    shown = _phone_folders(root)
    for path, (_, mask) in shown.items():  # masks with the photo's tag
        stored = Image.fromarray(mask).transpose(Image.Transpose.ROTATE_90)
        stored.save(path[:-4] + '_mask.png', exif=_exif(6))
    dataset = _folder_dataset(root)
    for index in range(len(dataset)):
        info = dataset.get_episode_info(index)
        loaded = LoadEpisode()(info)
        np.testing.assert_array_equal(loaded['gt_seg_map'],
                                      shown[info['img_path']][1] // 255)
