"""Typos in the dataloader configs (``test_dataloader.num_worker``) are
refused with the config checks, naming the loader and the closest key,
instead of torch's bare ``TypeError`` once the Runner builds the loader."""
import os.path as osp

import pytest
from mmengine.config import Config

from dcama_mm.engine import launch
from dcama_mm.engine.dataloader_checks import check_dataloader_cfgs
from tests.test_engine.test_option_checks import (OPTION_ERROR, SWIN_FOLD0,
                                                  tool_config)
from tests.test_tools.tiny_project import make_tiny_data, write_tiny_config


@pytest.mark.parametrize('loader, key, closest', [
    ('train_dataloader', 'batchsize', 'batch_size'),
    ('val_dataloader', 'persistant_workers', 'persistent_workers'),
    ('test_dataloader', 'num_worker', 'num_workers'),
])
def test_dataloader_typos_are_refused(loader, key, closest):
    cfg = Config.fromfile(SWIN_FOLD0)
    check_dataloader_cfgs(cfg, (loader, ))
    cfg[loader][key] = 1
    with pytest.raises(OPTION_ERROR,
                       match=rf"{loader}: unknown key '{key}' \(did you "
                       rf"mean '{closest}'\?\)"):
        check_dataloader_cfgs(cfg, (loader, ))
    # what mmengine's Runner.build_dataloader reads itself is valid
    del cfg[loader][key]
    cfg[loader].update(num_batch_per_epoch=2, pin_memory=True,
                       collate_fn=dict(type='pseudo_collate'))
    check_dataloader_cfgs(cfg, (loader, ))


def test_test_dataloader_typo_stops_before_the_runner(tmp_path):
    data_root = make_tiny_data(str(tmp_path))
    config = write_tiny_config(str(tmp_path / 'tiny.py'), data_root)
    work_dir = tmp_path / 'work'
    cfg = tool_config(config, ['test_dataloader.num_worker=0'],
                      work_dir=str(work_dir))
    cfg.load_from = None
    with pytest.raises(OPTION_ERROR, match="test_dataloader: unknown key "
                       r"'num_worker' \(did you mean 'num_workers'\?\)"):
        launch.build_runner(cfg, 'none', launch.check_test_config)
    assert not osp.exists(work_dir)  # no Runner was built
