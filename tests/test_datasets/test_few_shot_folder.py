"""FewShotFolderDataset: your own classes as a folder of class folders."""
import logging
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

from dcama_mm.datasets import FewShotFolderDataset
from dcama_mm.datasets.synthetic import make_synthetic_class_folders
from .episode_helpers import PIPELINE


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('mine'))
    make_synthetic_class_folders(root, num_classes=5, images_per_class=4,
                                 size_range=(40, 56), seed=2)
    return root


def _copy(folders, tmp_path):
    root = str(tmp_path / 'copy')
    shutil.copytree(folders, root)
    return root


def test_split_by_ratios_is_fixed_and_disjoint(folders):
    names = tuple(f'thing_{i:02d}' for i in range(5))
    splits = {}
    for split in ('train', 'val', 'test'):
        dataset = FewShotFolderDataset(
            data_root=folders, split=split, split_ratios=(0.6, 0.2, 0.2),
            split_seed=3)
        assert dataset.metainfo['classes'] == names
        splits[split] = dataset.metainfo['episode_class_ids']
    assert sorted(sum(splits.values(), [])) == list(range(5))
    assert [len(splits[s]) for s in ('train', 'val', 'test')] == [3, 1, 1]
    again = FewShotFolderDataset(data_root=folders, split='train',
                                 split_seed=3)
    assert again.metainfo['episode_class_ids'] == splits['train']


def test_split_by_list_files_and_test_episodes(folders, tmp_path):
    root = _copy(folders, tmp_path)
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_04\nthing_01\n')
    dataset = FewShotFolderDataset(
        data_root=root, split='test', shots=2,
        split_files=dict(test='test.txt'), pipeline=PIPELINE)
    assert dataset.metainfo['episode_class_ids'] == [1, 4]
    assert len(dataset) == 8  # one episode per image of the test classes
    queries = []
    for index in range(len(dataset)):
        info = dataset.get_episode_info(index)
        folder = osp.dirname(info['img_path'])
        assert info['seg_map_path'] == info['img_path'][:-4] + '_mask.png'
        assert len(set(info['support_img_paths'])) == 2
        assert all(osp.dirname(s) == folder
                   for s in info['support_img_paths'])
        assert info['img_path'] not in info['support_img_paths']
        queries.append(info['img_path'])
    assert len(set(queries)) == 8
    sample = dataset[0]['data_samples']
    raw = np.asarray(Image.open(dataset.get_episode_info(0)['seg_map_path']))
    np.testing.assert_array_equal(sample.ori_gt_sem_seg.data[0].numpy(),
                                  (raw >= 128).astype(np.int64))
    assert tuple(sample.support_imgs.shape) == (2, 3, 40, 40)


def test_training_episodes_are_class_uniform(folders):
    dataset = FewShotFolderDataset(data_root=folders, split='train',
                                   num_episodes=30, seed=1)
    classes = {dataset.get_episode_info(i)['class_id'] for i in range(30)}
    assert classes == set(dataset.metainfo['episode_class_ids'])
    assert not dataset.one_episode_per_image


def test_bad_folders_name_the_file(folders, tmp_path):
    root = _copy(folders, tmp_path)
    kwargs = dict(data_root=root, split='test', split_ratios=(0, 0, 1))
    os.remove(osp.join(root, 'thing_02', '3_mask.png'))
    with pytest.raises(FileNotFoundError,
                       match=r'thing_02/3\.jpg.*has no mask.*3_mask\.png'):
        FewShotFolderDataset(**kwargs)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(
        osp.join(root, 'thing_02', '3_mask.png'))
    with pytest.raises(ValueError, match=r'3_mask\.png.*10x12.*3\.jpg'):
        FewShotFolderDataset(**kwargs)
    shutil.rmtree(osp.join(root, 'thing_02'))
    os.makedirs(osp.join(root, 'thing_02'))
    with pytest.raises(ValueError, match=r'thing_02.*holds no image'):
        FewShotFolderDataset(**kwargs)
    shutil.rmtree(osp.join(root, 'thing_02'))
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_02\n')
    with pytest.raises(FileNotFoundError, match=r"thing_02.*test\.txt"):
        FewShotFolderDataset(data_root=root, split='test',
                             split_files=dict(test='test.txt'))
    with pytest.raises(ValueError, match='split_ratios'):
        FewShotFolderDataset(data_root=root, split_ratios=(0.5, 0.5, 0.5))
    with pytest.raises(FileNotFoundError, match='not a folder'):
        FewShotFolderDataset(data_root=str(tmp_path / 'nowhere'))


def test_small_class_is_skipped_with_a_warning_naming_it(folders, tmp_path):
    root = _copy(folders, tmp_path)
    for n in (2, 3, 4):
        os.remove(osp.join(root, 'thing_00', f'{n}.jpg'))
        os.remove(osp.join(root, 'thing_00', f'{n}_mask.png'))
    records = []

    class Handler(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    handler = Handler()
    MMLogger.get_current_instance().addHandler(handler)
    try:
        dataset = FewShotFolderDataset(
            data_root=root, split='test', split_ratios=(0, 0, 1), shots=1)
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    assert 0 not in dataset.metainfo['episode_class_ids']
    assert any('thing_00' in r and 'fewer than shots + 1' in r
               for r in records)


def test_a_class_in_two_split_lists_is_refused(folders, tmp_path):
    """Few-shot testing is on classes never trained on: a class listed in
    train.txt and test.txt used to be trained and tested on, silently."""
    root = _copy(folders, tmp_path)
    lists = dict(train='thing_00\nthing_01\nthing_02\n',
                 val='thing_03\n', test='thing_04\r\nthing_02\r\n')
    for split, text in lists.items():
        with open(osp.join(root, f'{split}.txt'), 'w', newline='') as f:
            f.write(text)
    split_files = {s: f'{s}.txt' for s in lists}
    for split in ('train', 'test'):
        with pytest.raises(ValueError, match=r"\['thing_02'\] are listed "
                           r'both in .*\.txt.* and in .*\.txt') as err:
            FewShotFolderDataset(data_root=root, split=split,
                                 split_files=split_files)
        assert 'train.txt' in str(err.value) and 'test.txt' in str(err.value)
    # the val split has no class in common with the training list
    val = FewShotFolderDataset(data_root=root, split='val',
                               split_files=split_files)
    assert val.metainfo['episode_class_ids'] == [3]
    # validation on the test classes (as COCO-20i and PASCAL-5i do) is fine
    with open(osp.join(root, 'val.txt'), 'w') as f:
        f.write('thing_04\n')
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_04\n')
    for split in ('train', 'val', 'test'):
        FewShotFolderDataset(data_root=root, split=split,
                             split_files=split_files)


def test_list_files_without_split_files_are_named_in_a_warning(
        folders, tmp_path, log_capture):
    """The README's layout has train.txt / val.txt / test.txt in the
    folder; without `split_files` they are not used (the split is the
    random one), which used to happen without a word."""
    root = _copy(folders, tmp_path)
    kwargs = dict(data_root=root, split='test', split_ratios=(0.6, 0.2, 0.2))
    random_split = FewShotFolderDataset(**kwargs).metainfo
    assert not log_capture.messages(logging.WARNING)
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_00\nthing_01\n')
    dataset = FewShotFolderDataset(**kwargs)
    assert dataset.metainfo['episode_class_ids'] == random_split[
        'episode_class_ids']
    (warning, ) = log_capture.messages(logging.WARNING)
    assert 'holds test.txt, but `split_files` is not set' in warning
    assert "split_files=dict(train='train.txt'" in warning


def test_a_blank_support_mask_is_refused_naming_it(folders, tmp_path):
    """A blank mask in a class folder (an image whose object was never
    drawn) used to make episodes whose support shows nothing, scored like
    any other; now such a support stops the test, naming the mask, and is
    redrawn in training. As a query it is a valid episode."""
    root = _copy(folders, tmp_path)
    blank = osp.join(root, 'thing_01', '2_mask.png')
    size = Image.open(blank).size
    Image.fromarray(np.zeros(size[::-1], np.uint8)).save(blank)
    with open(osp.join(root, 'test.txt'), 'w') as f:
        f.write('thing_01\n')
    dataset = FewShotFolderDataset(
        data_root=root, split='test', shots=2,
        split_files=dict(test='test.txt'), pipeline=PIPELINE)
    infos = [dataset.get_episode_info(i) for i in range(len(dataset))]
    as_support = [i for i, info in enumerate(infos)
                  if blank in info['support_seg_map_paths']]
    as_query = [i for i, info in enumerate(infos)
                if info['seg_map_path'] == blank]
    assert as_support and as_query
    with pytest.raises(ValueError, match=r"support mask #\d '.*thing_01/"
                       r"2_mask\.png' has no foreground pixel"):
        dataset[as_support[0]]
    assert not dataset[as_query[0]]['data_samples'].gt_sem_seg.data.any()
    # training: the episode is replaced by a substitute, not used as is
    train = FewShotFolderDataset(
        data_root=root, split='train', shots=2, num_episodes=8, max_redraws=3,
        split_files=dict(train='test.txt'), pipeline=PIPELINE)
    redrawn = [i for i in range(len(train)) if blank in
               train.get_episode_info(i)['support_seg_map_paths']]
    assert redrawn
    for i in redrawn:
        masks = train[i]['data_samples'].support_masks
        assert all(m.any() for m in masks)
