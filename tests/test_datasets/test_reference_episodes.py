"""``replay_reference=True``: the reference code's own test episodes.

Each benchmark's replayed sequence is compared with a straightforward
re-implementation, written here, of what the reference's ``test.py`` does:
``np.random.seed(seed)`` on numpy's global generator, then one
``np.random.choice(population, 1, replace=False)[0]`` per draw, in episode
order.
"""
import glob
import json
import os.path as osp
import pickle

import numpy as np
import pytest
from mmengine.dist import collect_results
from torch.utils.data import DataLoader

import dcama_mm  # noqa: F401  (registers the datasets)
from dcama_mm.datasets import (COCO20iDataset, EpisodeSampler,
                               FSS1000Dataset, PascalVOC5iDataset)
from dcama_mm.datasets.synthetic import (make_synthetic_fss1000,
                                         make_synthetic_pascal5i)
from .coco_helpers import load_index, make_converted_coco
from .episode_helpers import run_two_ranks


# ----------------------------------------------------------------------
# The reference, re-implemented on numpy's global generator
# ----------------------------------------------------------------------
@pytest.fixture(autouse=True)
def keep_global_numpy_state():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def _supports(pool, query, shots):
    supports = []
    while True:
        s = np.random.choice(pool, 1, replace=False)[0]
        if query != s:
            supports.append(s)
        if len(supports) == shots:
            return supports


def reference_coco(seed, fold, class_images, shots, num=1000):
    np.random.seed(seed)
    fold_classes = [fold + 4 * i for i in range(len(class_images) // 4)]
    episodes = []
    for _ in range(num):
        class_id = np.random.choice(fold_classes, 1, replace=False)[0]
        query = np.random.choice(class_images[class_id], 1,
                                 replace=False)[0]
        episodes.append((int(class_id), str(query),
                         [str(s) for s in _supports(
                             class_images[class_id], query, shots)]))
    return episodes


def reference_pascal(seed, list_file, shots, num=1000):
    pairs = []
    with open(list_file) as f:
        for line in f.read().split('\n'):
            if line:
                name, cls = line.split('__')
                pairs.append((name, int(cls) - 1))
    images = {c: [n for n, k in pairs if k == c] for c in range(20)}
    np.random.seed(seed)
    episodes = []
    for index in range(num):
        query, class_id = pairs[index % len(pairs)]
        episodes.append((class_id, query,
                         [str(s) for s in _supports(images[class_id], query,
                                                    shots)]))
    return episodes


def reference_fss(seed, root, test_classes, first_index, shots):
    queries = []
    for name in sorted(test_classes):
        queries += sorted(glob.glob(osp.join(root, name, '*.jpg')))
    np.random.seed(seed)
    episodes = []
    for query in queries:
        folder = osp.dirname(query)
        supports = []
        while True:
            n = np.random.choice(range(1, 11), 1, replace=False)[0]
            s = osp.join(folder, f'{n}.jpg')
            if query != s:
                supports.append(s)
            if len(supports) == shots:
                break
        class_id = sorted(test_classes).index(osp.basename(folder))
        episodes.append((first_index + class_id, query, supports))
    return episodes


def _replayed(dataset, strip=''):
    out = []
    for i in range(len(dataset)):
        ep = dataset.get_episode_info(i)
        name = ep['img_path'][len(strip):]
        out.append((ep['class_id'], name,
                    [s[len(strip):] for s in ep['support_img_paths']]))
    return out


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    """A tiny converted COCO plus per-fold index files in a shuffled list
    order, as converted from the reference's split files."""
    root = str(tmp_path_factory.mktemp('coco'))
    make_converted_coco(root, num_classes=8, images_per_class=(3, 7))
    index = load_index(root, 'val2014')
    rng = np.random.default_rng(0)
    lists = [list(rng.permutation(lst)) for lst in index['class_images']]
    ref = dict(index, class_images=[[str(n) for n in lst] for lst in lists])
    path = osp.join(root, 'annotations_fss', 'val2014_class_index_fold0.json')
    with open(path, 'w') as f:
        json.dump(ref, f)
    return dict(root=root, lists=ref['class_images'],
                ann_file='annotations_fss/val2014_class_index_fold{fold}.json')


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('voc'))
    info = make_synthetic_pascal5i(
        root, seed=4, train_images_per_class=1, test_images_per_class=6,
        size_range=(24, 32))
    # a repeated line: the reference reads the list as it is
    list_file = osp.join(info['split_dir'], 'val', 'fold1.txt')
    with open(list_file) as f:
        lines = f.read().splitlines()
    with open(list_file, 'w') as f:
        f.write('\n'.join(lines + lines[2:3]) + '\n')
    return info


@pytest.fixture(scope='module')
def fss(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fss'))
    return make_synthetic_fss1000(
        root, num_classes=(2, 1, 3), images_per_class=10,
        size_range=(24, 32), seed=2)


# ----------------------------------------------------------------------
# The replayed sequence is the reference's
# ----------------------------------------------------------------------
@pytest.mark.parametrize('shots,seed', [(1, 0), (5, 0), (5, 3)])
def test_coco_replays_the_reference(coco, shots, seed):
    ds = COCO20iDataset(
        fold=0, shots=shots, seed=seed, data_root=coco['root'],
        ann_file=coco['ann_file'], replay_reference=True,
        serialize_data=False)
    assert len(ds) == 1000 and ds.metainfo['replay_reference']
    expected = reference_coco(seed, 0, coco['lists'], shots)
    assert _replayed(ds, coco['root'] + '/') == expected
    # supports may repeat each other, as in the reference
    if shots == 5:
        assert any(len(set(s)) < 5 for _, _, s in expected)
    # the default draw is another sample of the same distribution
    plain = COCO20iDataset(
        fold=0, shots=shots, seed=seed, data_root=coco['root'],
        ann_file=coco['ann_file'], serialize_data=False)
    assert _replayed(plain, coco['root'] + '/') != expected


@pytest.mark.parametrize('shots', [1, 5])
def test_pascal_replays_the_reference(voc, shots):
    ds = PascalVOC5iDataset(
        data_root=voc['data_root'], fold=1, shots=shots, seed=0,
        replay_reference=True, serialize_data=False)
    assert len(ds) == 1000
    expected = reference_pascal(
        0, osp.join(voc['split_dir'], 'val', 'fold1.txt'), shots)
    prefix = osp.join(voc['data_root'], 'JPEGImages') + '/'
    got = [(c, q[:-4], [s[:-4] for s in sup])
           for c, q, sup in _replayed(ds, prefix)]
    assert got == expected


@pytest.mark.parametrize('shots,seed', [(1, 0), (5, 7)])
def test_fss_replays_the_reference(fss, shots, seed):
    ds = FSS1000Dataset(
        data_root=fss['data_root'], split='test', shots=shots, seed=seed,
        replay_reference=True, serialize_data=False)
    assert len(ds) == 30  # one episode per test image
    with open(osp.join(fss['data_root'], 'splits', 'test.txt')) as f:
        test_classes = f.read().split()
    expected = reference_fss(seed, fss['data_root'], test_classes, 3, shots)
    assert [e[1] for e in expected][:3] == [
        osp.join(fss['data_root'], sorted(test_classes)[0], n)
        for n in ('1.jpg', '10.jpg', '2.jpg')]
    assert _replayed(ds) == expected


# ----------------------------------------------------------------------
# Same episodes with any number of workers and processes
# ----------------------------------------------------------------------
def _loaded(dataset, workers):
    loader = DataLoader(
        dataset, batch_size=4, num_workers=workers,
        sampler=EpisodeSampler(dataset), collate_fn=list)
    return [(ep['episode_index'], ep['img_path'],
             tuple(ep['support_img_paths'])) for batch in loader
            for ep in batch]


def _rank_worker(rank, dataset, out_file):
    local = [(i, dataset.get_episode_info(i)['img_path'],
              dataset.get_episode_info(i)['support_img_paths'])
             for i in EpisodeSampler(dataset)]
    gathered = collect_results(local, len(dataset), device='cpu')
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump(gathered, f)


def test_workers_and_processes_give_the_same_episodes(fss, tmp_path):
    ds = FSS1000Dataset(
        data_root=fss['data_root'], split='test', shots=5, seed=1,
        replay_reference=True)
    expected = [(i, ep[1], tuple(ep[2]))
                for i, ep in enumerate(_replayed(ds))]
    assert _loaded(ds, 0) == expected
    assert _loaded(ds, 2) == expected
    out = str(tmp_path / 'gathered.json')
    run_two_ranks(_rank_worker, tmp_path, ds, out)
    with open(out) as f:
        assert [(i, q, tuple(s)) for i, q, s in json.load(f)] == expected


# ----------------------------------------------------------------------
# Lists the reference could not have, and other bad input
# ----------------------------------------------------------------------
def test_class_with_too_few_images_is_an_error(coco, tmp_path):
    lists = [list(lst) for lst in coco['lists']]
    lists[4] = lists[4][:1]  # a test class of fold 0 with one image
    index = load_index(coco['root'], 'val2014')
    path = osp.join(coco['root'], 'annotations_fss', 'one_image.json')
    with open(path, 'w') as f:
        json.dump(dict(index, class_images=lists), f)
    kwargs = dict(fold=0, data_root=coco['root'],
                  ann_file='annotations_fss/one_image.json')
    with pytest.raises(ValueError, match=r'class 4 .*has 1 in .*one_image'):
        COCO20iDataset(replay_reference=True, **kwargs)
    lists[4] = coco['lists'][4][:3]  # fewer than K + 1 = 6
    with open(path, 'w') as f:
        json.dump(dict(index, class_images=lists), f)
    with pytest.raises(ValueError, match='at least shots \\+ 1 = 6'):
        COCO20iDataset(replay_reference=True, shots=5, **kwargs)
    # without replaying, such a class is skipped with a warning
    assert COCO20iDataset(shots=5, **kwargs).metainfo[
        'episode_class_ids'] == [0]


def test_malformed_list_and_missing_images_are_errors(voc, fss, tmp_path):
    bad = tmp_path / 'splits'
    (bad / 'val').mkdir(parents=True)
    (bad / 'val' / 'fold0.txt').write_text('2007_000001__01\nnot a pair\n')
    with pytest.raises(ValueError, match=r'line 2 of the fold list .*fold0'):
        PascalVOC5iDataset(data_root=voc['data_root'], split_dir=str(bad),
                           replay_reference=True)
    # FSS-1000: the reference draws among 1.jpg .. 10.jpg
    small = make_synthetic_fss1000(
        str(tmp_path / 'fss5'), num_classes=(1, 1, 1), images_per_class=5,
        size_range=(16, 16))
    with pytest.raises(ValueError, match=r'1.jpg .. 10.jpg.*6.jpg'):
        FSS1000Dataset(data_root=small['data_root'], replay_reference=True)


def test_replaying_is_for_test_splits_and_fixed_length(fss, coco):
    with pytest.raises(ValueError, match='test split'):
        FSS1000Dataset(data_root=fss['data_root'], split='train',
                       replay_reference=True)
    with pytest.raises(ValueError, match='True or False'):
        FSS1000Dataset(data_root=fss['data_root'], replay_reference='yes')
    ds = COCO20iDataset(
        fold=0, data_root=coco['root'], ann_file=coco['ann_file'],
        replay_reference=True, num_episodes=20)
    assert len(ds) == 20
    assert ds.get_episode_info(19)['episode_index'] == 19
    with pytest.raises(ValueError, match="reference's 20"):
        ds.get_episode_info(20)


def test_malformed_reference_pkl_names_the_file(tmp_path):
    from dcama_mm.datasets.converters.coco20i_index import load_ref_split
    path = tmp_path / 'fold0.pkl'
    with open(path, 'wb') as f:
        pickle.dump({0: 'not a list'}, f)
    with pytest.raises(ValueError, match='fold0.pkl.*malformed'):
        load_ref_split(str(path), 80)
    path.write_bytes(b'garbage')
    with pytest.raises(ValueError, match='Cannot read the split file'):
        load_ref_split(str(path), 80)
