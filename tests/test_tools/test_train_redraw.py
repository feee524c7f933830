"""tools/dist_train.sh goes on past a corrupt training image (the shipped
training dataloaders' ``max_redraws``) and logs it on every rank;
tools/test.py stops on a corrupt test image, naming it. Real Runner, real
torchrun + gloo, real files."""
import os.path as osp

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS

from tests.test_tools.tiny_project import (TOOLS, TRAIN_EPISODES,
                                           make_tiny_data, run,
                                           write_tiny_config)


def _corrupt(path):
    with open(path, 'wb') as f:
        f.write(b'\xff\xd8\xff this is not a jpeg')


def _episode_paths(cfg, split, indices):
    import dcama_mm  # noqa: F401  (registers the dataset)
    init_default_scope('mmseg')
    dataset_cfg = dict(cfg[split].dataset)
    dataset_cfg['pipeline'] = []
    dataset = DATASETS.build(dataset_cfg)
    infos = [dataset.get_episode_info(i) for i in indices]
    return [[info['img_path'], *info['support_img_paths']] for info in infos]


def test_train_survives_a_corrupt_image_and_test_names_it(tmp_path):
    root = str(tmp_path)
    data_root = make_tiny_data(root)
    config = write_tiny_config(osp.join(root, 'tiny.py'), data_root)
    cfg = Config.fromfile(config)
    # the query of episode 1 of epoch 1: loaded by rank 1 of 2, whose
    # warnings mmengine's logger would not show
    paths = _episode_paths(cfg, 'train_dataloader', range(TRAIN_EPISODES))
    bad = paths[1][0]
    uses = [i for i, p in enumerate(paths) if bad in p]
    _corrupt(bad)
    work_dir = osp.join(root, 'train')
    proc = run(['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2',
                '--work-dir', work_dir, '--cfg-options',
                'train_cfg.max_epochs=1'], cwd=root)
    log = proc.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    lines = [line for line in log.splitlines()
             if 'cannot be loaded' in line]
    assert all(osp.basename(bad) in line for line in lines)
    first = sorted(
        int(line.split('episode ')[1].split()[0]) for line in lines
        if 'substitute 1 of at most 3' in line)
    assert first == uses, log[-3000:]
    assert any('Episodes redrawn by this process so far: 1.' in line
               for line in lines)
    assert cfg.train_dataloader.dataset.max_redraws == 3  # from the base

    # a test stops on a corrupt image, naming it
    test_bad = _episode_paths(cfg, 'test_dataloader', [0])[0][0]
    _corrupt(test_bad)
    proc = run(['python', osp.join(TOOLS, 'test.py'), config,
                osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
                osp.join(root, 'test')], cwd=root, check=False)
    assert proc.returncode != 0
    assert f'Cannot decode the image {test_bad!r}' in proc.stdout
