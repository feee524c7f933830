"""tools/dist_test.sh --show-dir on 2 CPU processes (real torchrun + gloo).

Every rank draws its own episodes: the pictures must carry class names on
every rank (mmengine's ``Visualizer.dataset_meta`` is master-only), and the
padding episode that evens out the ranks must not be drawn a second time.
"""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest

from tests.test_tools.tiny_project import (TEST_EPISODES, TOOLS,
                                           make_tiny_project, run)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Tiny data, config and a checkpoint of the freshly built model."""

    import dcama_mm  # noqa: F401  (registers the model)
    root = str(tmp_path_factory.mktemp('show_dir'))
    return make_tiny_project(root, checkpoint='init.pth')


def _pictures(work_dir):
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'eps', '*.png')))
    return {osp.basename(p): p for p in paths}


def test_two_processes_draw_each_episode_once_with_class_names(tiny):
    root, config, ckpt = tiny['root'], tiny['config'], tiny['ckpt']
    one, two = osp.join(root, 'one'), osp.join(root, 'two')
    run(['python', osp.join(TOOLS, 'test.py'), config, ckpt, '--work-dir',
         one, '--show-dir', 'eps'], cwd=root)
    run(['bash', osp.join(TOOLS, 'dist_test.sh'), config, ckpt, '2',
         '--work-dir', two, '--show-dir', 'eps'], cwd=root)
    single, dist = _pictures(one), _pictures(two)
    # 7 episodes: rank 0 draws 0, 2, 4, 6; rank 1 draws 1, 3, 5 and its
    # padding (episode 0 again) is not drawn
    assert len(single) == TEST_EPISODES
    assert len(dist) == TEST_EPISODES
    indices = sorted(int(name.split('_')[1]) for name in dist)
    assert indices == list(range(TEST_EPISODES))
    # file names by class name on both ranks, as on one process
    assert sorted(dist) == sorted(single)
    names = {name.split('_', 2)[2][:-len('.png')] for name in dist}
    assert names <= {'person', 'bicycle', 'car', 'motorcycle', 'airplane',
                     'bus', 'train', 'truck'}, names
    # the pictures (title band included) are those of the 1-process run
    for name, path in dist.items():
        a = cv2.imread(path)
        b = cv2.imread(single[name])
        assert a.shape == b.shape, name
        title = a.shape[0] // 10  # the title band is at the top
        np.testing.assert_array_equal(a[:title], b[:title], err_msg=name)


def test_interval_and_max_episodes_count_in_one_process_order(tiny):
    root, config, ckpt = tiny['root'], tiny['config'], tiny['ckpt']
    work_dir = osp.join(root, 'two_interval')
    run(['bash', osp.join(TOOLS, 'dist_test.sh'), config, ckpt, '2',
         '--work-dir', work_dir, '--show-dir', 'eps', '--cfg-options',
         'default_hooks.visualization.interval=2',
         'default_hooks.visualization.max_episodes=3'], cwd=root)
    indices = sorted(
        int(name.split('_')[1]) for name in _pictures(work_dir))
    # episodes 0, 2, 4 (the first 3 of every 2nd), all drawn by rank 0
    assert indices == [0, 2, 4]
