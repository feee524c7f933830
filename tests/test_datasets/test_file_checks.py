"""Missing images and masks are found when the dataset is built.

Real files: a synthetic COCO converted by the real converter, a synthetic
PASCAL-5i and FSS-1000 in their real layouts; files are deleted and the
dataset build must name them, count them and name the data root and the
list file.
"""
import os
import os.path as osp
import re
import shutil

import pytest

from dcama_mm.datasets import (COCO20iDataset, FSS1000Dataset,
                               PascalVOC5iDataset)
from dcama_mm.datasets.synthetic import (make_synthetic_fss1000,
                                         make_synthetic_pascal5i)
from .coco_helpers import PIPELINE, load_index


def _copy(src, tmp_path):
    dst = str(tmp_path / 'copy')
    shutil.copytree(src, dst)
    return dst


def test_missing_coco_images_and_mask_named_and_counted(coco_root, tmp_path):
    root = _copy(coco_root, tmp_path)
    index = load_index(root, 'val2014')
    fold0 = sorted({n for c in (0, 4) for n in index['class_images'][c]})
    gone = fold0[:2]
    for name in gone:
        os.remove(osp.join(root, name))
    stem = osp.splitext(osp.basename(fold0[-1]))[0]
    mask = osp.join(root, index['mask_dir'], f'{stem}.png')
    os.remove(mask)
    with pytest.raises(FileNotFoundError) as info:
        COCO20iDataset(fold=0, data_root=root, pipeline=PIPELINE)
    msg = str(info.value)
    num = len(fold0)
    assert f'2 of the {num} images' in msg, msg
    assert f'1 of the {num} masks' in msg, msg
    for name in gone:
        assert osp.basename(name) in msg
    assert f'{stem}.png' in msg
    assert 'val2014_class_index.json' in msg and repr(root) in msg
    assert 'check_files=False' in msg
    # the check can be turned off: the file is then missed at load time
    ds = COCO20iDataset(fold=0, data_root=root, pipeline=PIPELINE,
                        check_files=False)
    assert ds.num_records > 0


def test_message_shows_the_first_few_of_many(coco_root, tmp_path):
    root = _copy(coco_root, tmp_path)
    shutil.rmtree(osp.join(root, 'val2014'))  # every image
    with pytest.raises(FileNotFoundError) as info:
        COCO20iDataset(fold=1, data_root=root)
    msg = str(info.value)
    shown = re.findall(r"'[^']*val2014/COCO_val2014_[^']*\.jpg'", msg)
    assert len(shown) == 5 and ', ...' in msg, msg
    assert not re.search(r'of the \d+ masks', msg)


def test_pascal5i_missing_files(tmp_path):
    voc = make_synthetic_pascal5i(str(tmp_path / 'voc'), seed=3)
    root = voc['data_root']
    name, class_id = voc['pairs']['val'][0]
    fold = class_id // 5
    os.remove(osp.join(root, 'JPEGImages', name + '.jpg'))
    os.remove(osp.join(root, 'SegmentationClassAug', name + '.png'))
    with pytest.raises(FileNotFoundError) as info:
        PascalVOC5iDataset(data_root=root, fold=fold, split='test')
    msg = str(info.value)
    assert re.search(r'1 of the \d+ images', msg), msg
    assert re.search(r'1 of the \d+ masks', msg), msg
    assert f'{name}.jpg' in msg and f'{name}.png' in msg
    assert f'fold{fold}.txt' in msg and repr(root) in msg


def test_fss1000_missing_masks_all_counted(tmp_path):
    fss = make_synthetic_fss1000(str(tmp_path / 'fss'), num_classes=(3, 2, 2),
                                 seed=1)
    root = fss['data_root']
    for cls, n in (('synth_005', 3), ('synth_006', 1), ('synth_006', 4)):
        os.remove(osp.join(root, cls, f'{n}.png'))
    with pytest.raises(FileNotFoundError) as info:
        FSS1000Dataset(data_root=root, split='test')
    msg = str(info.value)
    assert '3 of the 10 masks' in msg, msg
    for part in ('synth_005/3.png', 'synth_006/1.png', 'synth_006/4.png'):
        assert part in msg
    assert 'test.txt' in msg


def test_one_listing_per_folder(tmp_path, monkeypatch):
    from dcama_mm.datasets.file_checks import missing_files
    folders = [tmp_path / f'd{i}' for i in range(3)]
    paths = []
    for folder in folders:
        folder.mkdir()
        for k in range(200):
            (folder / f'{k}.jpg').write_bytes(b'')
            paths.append(str(folder / f'{k}.jpg'))
    (folders[1] / 'sub.jpg').mkdir()  # a folder is not a file
    absent = [str(folders[0] / 'x.jpg'), str(folders[1] / 'sub.jpg'),
              str(tmp_path / 'nowhere' / 'y.jpg'), 's3://bucket/z.jpg']
    calls = []
    real_scandir = os.scandir

    def counting_scandir(path='.'):
        calls.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, 'scandir', counting_scandir)
    got = missing_files(paths + absent + paths[:10])
    # remote paths are not checked; every other absent path is reported,
    # in order, once; each folder is listed once
    assert got == absent[:3]
    assert sorted(c.rstrip(os.sep) for c in calls) == sorted(
        {str(f) for f in folders} | {str(tmp_path / 'nowhere')})
