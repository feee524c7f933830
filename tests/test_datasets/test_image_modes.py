"""Image files of every mode, written by Pillow and cv2, read by the one
rule of dcama_mm.datasets.transforms.image_modes (datasets, inference and
the web page alike)."""
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis.webui_inputs import read_image_file
from dcama_mm.datasets.transforms import LoadEpisode

H, W = 24, 32


def gradient16() -> np.ndarray:
    """16-bit grey samples over the whole range, not multiples of 257."""
    values = np.linspace(0, 65535, H * W).reshape(H, W)
    return values.astype(np.uint16)


def scaled(v16: np.ndarray) -> np.ndarray:
    """The rule: round(v / 257)."""
    return np.rint(v16.astype(np.float64) / 257).astype(np.uint8)


def grey3(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def write_cases(root: str) -> dict:
    """File name -> (expected BGR uint8, tolerance with Pillow decoding)."""
    g16 = gradient16()
    g8 = scaled(g16)
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    alpha = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    cases = {}

    Image.fromarray(g16).save(osp.join(root, 'grey16_pillow.png'))
    cases['grey16_pillow.png'] = (grey3(g8), 0)
    cv2.imwrite(osp.join(root, 'grey16_cv2.png'), g16)
    cases['grey16_cv2.png'] = (grey3(g8), 0)
    Image.fromarray(g16).save(osp.join(root, 'grey16.tif'))
    cases['grey16.tif'] = (grey3(g8), 0)
    bgr16 = np.dstack([g16, g16[::-1], g16[:, ::-1]])
    cv2.imwrite(osp.join(root, 'bgr16_cv2.png'), bgr16)
    # Pillow has no 16-bit colour mode: it keeps the high byte (off by 1)
    cases['bgr16_cv2.png'] = (scaled(bgr16), 1)
    cv2.imwrite(osp.join(root, 'bgra16_cv2.png'),
                np.dstack([bgr16, g16[::-1, ::-1]]))
    cases['bgra16_cv2.png'] = (scaled(bgr16), 1)
    Image.fromarray(np.dstack([g8, alpha]), 'LA').save(
        osp.join(root, 'grey_alpha.png'))
    cases['grey_alpha.png'] = (grey3(g8), 0)  # alpha ignored
    Image.fromarray(np.dstack([rgb8, alpha]), 'RGBA').save(
        osp.join(root, 'rgba.png'))
    cases['rgba.png'] = (rgb8[..., ::-1], 0)
    palette_img = Image.fromarray(rgb8).quantize(16)
    palette_img.save(osp.join(root, 'palette.png'))
    cases['palette.png'] = (np.asarray(palette_img.convert('RGB'))[..., ::-1],
                            0)
    bits = g16 > 30000
    Image.fromarray(bits).save(osp.join(root, 'one_bit.png'))
    cases['one_bit.png'] = (grey3(bits.astype(np.uint8) * 255), 0)
    floats = (g16 / 65535).astype(np.float32)
    Image.fromarray(floats, 'F').save(osp.join(root, 'float.tif'))
    cases['float.tif'] = (grey3(np.rint(floats * 255).astype(np.uint8)), 0)
    Image.fromarray(g16.astype(np.int32), 'I').save(
        osp.join(root, 'int32.tif'))
    cases['int32.tif'] = (grey3(g8), 0)
    return cases


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('modes'))
    return root, write_cases(root)


def load(path: str, backend: str = 'cv2') -> np.ndarray:
    return LoadEpisode(imdecode_backend=backend).transform(
        dict(img_path=path, support_img_paths=[],
             support_seg_map_paths=[]))['img']


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_every_mode_is_read_by_the_rule(image_files, backend):
    root, cases = image_files
    for name, (expected, pillow_tolerance) in cases.items():
        img = load(osp.join(root, name), backend)
        assert img.dtype == np.uint8 and img.shape == (H, W, 3), name
        tolerance = pillow_tolerance if backend == 'pillow' else 0
        diff = np.abs(img.astype(int) - expected.astype(int)).max()
        assert diff <= tolerance, (name, backend, diff)


def test_a_16_bit_image_is_not_white(image_files):
    """The report: a 16-bit grey PNG read as a uniform white image."""
    root, _ = image_files
    for backend in ('cv2', 'pillow'):
        img = load(osp.join(root, 'grey16_pillow.png'), backend)
        assert len(np.unique(img)) > 200, backend
        assert img[0, 0, 0] == 0 and img[-1, -1, 0] == 255


def test_an_8_bit_image_saved_as_16_bit_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'x16.png'), bgr.astype(np.uint16) * 257)
    np.testing.assert_array_equal(load(str(tmp_path / 'x16.png')), bgr)


def test_the_web_page_reads_files_by_the_same_rule(image_files):
    root, cases = image_files
    for name in cases:
        path = osp.join(root, name)
        np.testing.assert_array_equal(read_image_file(path, 'query'),
                                      load(path))


def test_float_images_outside_0_1_are_refused_naming_the_file(tmp_path):
    path = str(tmp_path / 'hdr.tif')
    Image.fromarray(np.full((H, W), 3.5, np.float32), 'F').save(path)
    with pytest.raises(ValueError,
                       match=r"hdr.tif'.*floating-point samples in \[3.5, "
                       r'3.5\].*0..1'):
        load(path)


def test_in_memory_conversion():
    from dcama_mm.datasets.transforms.image_modes import to_uint8_image
    g16 = gradient16()
    np.testing.assert_array_equal(to_uint8_image(g16, 'x'),
                                  grey3(scaled(g16)))
    bgr = np.zeros((2, 2, 3), np.uint8)
    assert to_uint8_image(bgr, 'x') is bgr
    with pytest.raises(ValueError, match="image 'neg.tif'.*int16 samples"):
        to_uint8_image(np.full((2, 2), -1, np.int16), "image 'neg.tif'")


def test_corrupt_files_are_still_refused(tmp_path):
    path = tmp_path / 'broken.png'
    path.write_bytes(b'\x89PNG not really')
    for backend in ('cv2', 'pillow'):
        with pytest.raises(ValueError, match='broken.png.*corrupt'):
            load(str(path), backend)


def test_inference_reads_16_bit_queries_and_supports_alike(tmp_path):
    """The inferencer (the test pipeline's LoadEpisode) gives the same
    masks for 8-bit files and their 16-bit copies."""
    from tests.test_apis.inferencer_helpers import (NET_SIZE,
                                                    build_tiny_model,
                                                    make_image, make_mask)
    from dcama_mm.apis import FewShotInferencer
    rng = np.random.default_rng(2)
    files = {}
    for name, (h, w) in (('support', (40, 56)), ('query', (37, 53))):
        grey = make_image(rng, h, w).mean(axis=2).astype(np.uint8)
        Image.fromarray(grey).save(tmp_path / f'{name}8.png')
        Image.fromarray(grey.astype(np.uint16) * 257).save(
            tmp_path / f'{name}16.png')
        assert Image.open(tmp_path / f'{name}16.png').mode == 'I;16'
        files[name] = grey
    Image.fromarray(make_mask(40, 56)).save(tmp_path / 'mask.png')
    inferencer = FewShotInferencer(build_tiny_model(), device='cpu',
                                   img_size=NET_SIZE)
    masks = [
        inferencer(str(tmp_path / f'query{bits}.png'),
                   support_imgs=[str(tmp_path / f'support{bits}.png')],
                   support_masks=[str(tmp_path / 'mask.png')],
                   return_probs=True)['predictions']
        for bits in (8, 16)
    ]
    assert 0 < masks[0]['sem_seg'].mean() < 1
    np.testing.assert_array_equal(masks[0]['sem_seg'], masks[1]['sem_seg'])
    np.testing.assert_array_equal(masks[0]['fg_prob'], masks[1]['fg_prob'])
