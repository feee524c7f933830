"""Tests of tools/dataset_converters/pascal5i.py on hand-made VOC palette
PNGs and SBD .mat files."""
import importlib.util
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from dcama_mm.datasets.synthetic.voc import save_palette_mask

REPO = Path(__file__).resolve().parents[2]


def _tool():
    path = REPO / 'tools' / 'dataset_converters' / 'pascal5i.py'
    spec = importlib.util.spec_from_file_location('pascal5i_converter', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _tool()

# VOC: a cat (class 8) with a boundary band, and an image SBD also has.
VOC_CAT = np.array([[0, 0, 0, 0], [0, 255, 255, 0], [0, 255, 8, 8],
                    [0, 0, 8, 8]], np.uint8)
VOC_BOTH = np.array([[15, 15, 0], [255, 0, 0]], np.uint8)
# SBD: a dog (12) and a person (15); no boundaries.
SBD_ONLY = np.array([[0, 12, 12], [15, 15, 0], [0, 0, 0]], np.uint8)
SBD_BOTH = np.array([[1, 1, 1], [1, 1, 1]], np.uint8)  # VOC's must win


def _mat(path, seg):
    savemat(path, {'GTcls': {'Segmentation': seg.astype(np.uint8),
                             'Boundaries': np.zeros(1),
                             'CategoriesPresent': np.unique(seg)}})


@pytest.fixture
def sources(tmp_path):
    voc = tmp_path / 'VOCdevkit' / 'VOC2012'
    save_palette_mask(str(voc / 'SegmentationClass' / '2007_000001.png'),
                      VOC_CAT)
    save_palette_mask(str(voc / 'SegmentationClass' / '2008_000002.png'),
                      VOC_BOTH)
    (voc / 'JPEGImages').mkdir()
    for stem in ('2007_000001', '2008_000002', '2008_000003'):
        cv2.imwrite(str(voc / 'JPEGImages' / f'{stem}.jpg'),
                    np.zeros((4, 4, 3), np.uint8))
    cls = tmp_path / 'SBD' / 'benchmark_RELEASE' / 'dataset' / 'cls'
    cls.mkdir(parents=True)
    _mat(str(cls / '2008_000003.mat'), SBD_ONLY)
    _mat(str(cls / '2008_000002.mat'), SBD_BOTH)
    return str(voc), str(tmp_path / 'SBD')


def _read(voc, stem):
    return cv2.imread(osp.join(voc, 'SegmentationClassAug', stem + '.png'),
                      cv2.IMREAD_UNCHANGED)


def test_masks_from_voc_and_sbd(sources):
    voc, sbd = sources
    # the palette PNG shows colours, but holds the class numbers
    assert Image.open(osp.join(voc, 'SegmentationClass',
                               '2007_000001.png')).mode == 'P'
    summary = tool.main([voc, sbd])
    assert summary['voc'] == 2 and summary['sbd'] == 1
    assert summary['classes'] == ['cat', 'dog', 'person']
    assert summary['missing_images'] == 0
    assert sorted(os.listdir(osp.join(voc, 'SegmentationClassAug'))) == [
        '2007_000001.png', '2008_000002.png', '2008_000003.png']
    out = _read(voc, '2007_000001')
    assert out.dtype == np.uint8 and out.ndim == 2
    assert np.array_equal(out, VOC_CAT)  # 255 boundaries kept
    assert np.array_equal(_read(voc, '2008_000002'), VOC_BOTH)  # VOC wins
    assert np.array_equal(_read(voc, '2008_000003'), SBD_ONLY)
    # never overwritten without --force
    with pytest.raises(FileExistsError, match='--force'):
        tool.main([voc, sbd])
    tool.main([voc, sbd, '--force'])
    # benchmark_RELEASE itself is accepted as SBD_DIR
    tool.main([voc, osp.join(sbd, 'benchmark_RELEASE'), '--out-dir',
               osp.join(voc, 'other')])
    assert len(os.listdir(osp.join(voc, 'other'))) == 3


def test_bad_input_names_the_file(sources, tmp_path):
    voc, sbd = sources
    with pytest.raises(FileNotFoundError, match='no SegmentationClass'):
        tool.main([str(tmp_path), sbd])
    with pytest.raises(FileNotFoundError, match='benchmark_RELEASE'):
        tool.main([voc, voc])
    cls = osp.join(sbd, 'benchmark_RELEASE', 'dataset', 'cls')
    with open(osp.join(cls, '2009_000009.mat'), 'wb') as f:
        f.write(b'not a MATLAB file')
    with pytest.raises(ValueError, match=r'2009_000009.mat.*MATLAB'):
        tool.main([voc, sbd, '--force'])
    savemat(osp.join(cls, '2009_000009.mat'), {'other': np.zeros(2)})
    with pytest.raises(ValueError, match=r'2009_000009.mat.*GTcls'):
        tool.main([voc, sbd, '--force'])
    os.remove(osp.join(cls, '2009_000009.mat'))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(
        osp.join(voc, 'SegmentationClass', '2007_000001.png'))
    with pytest.raises(ValueError, match=r"2007_000001.png.*'RGB'"):
        tool.main([voc, sbd, '--force'])
