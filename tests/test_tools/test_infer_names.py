"""Result file names of tools/infer.py and FewShotInferencer: unique,
predictable from the query's file name alone, logged; and the results of
a run written to a folder are not kept in memory."""
import logging
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from dcama_mm.apis.inference_inputs import result_names
from tests.test_apis.inferencer_helpers import (CONFIG_TEXT, NET_SIZE,
                                                build_tiny_model, make_image,
                                                write_episode_files)
from tests.test_tools.test_infer import load_tool

#: The report's folder: three queries whose stems collide.
QUERIES = {'a.jpg': (30, 41), 'a_1.jpg': (52, 33), 'a.png': (45, 60)}


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp('names')
    model = build_tiny_model()
    cfg = str(root / 'tiny.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG_TEXT)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    supports, masks, _ = write_episode_files(str(root), 1, [])
    folder = root / 'photos'
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name, (h, w) in QUERIES.items():
        Image.fromarray(make_image(rng, h, w)).save(folder / name,
                                                    quality=95)
    return dict(model=model, cfg=cfg, ckpt=ckpt, support=supports[0],
                mask=masks[0], folder=str(folder), root=root)


def cli_args(project, out, *queries):
    args = [project['cfg'], project['ckpt'], '--support',
            f"{project['support']}:{project['mask']}", '--out', out,
            '--img-size', str(NET_SIZE), '--device', 'cpu']
    for query in queries or (project['folder'], ):
        args += ['--query', query]
    return args


def test_colliding_stems_get_their_own_files(project, log_capture):
    out = str(project['root'] / 'out')
    assert load_tool('tools/infer.py').main(cli_args(project, out)) == 0
    assert sorted(os.listdir(osp.join(out, 'pred'))) == [
        'a.jpg.png', 'a.png.png', 'a_1.jpg.png']
    assert sorted(os.listdir(osp.join(out, 'vis'))) == [
        'a.jpg.jpg', 'a.png.jpg', 'a_1.jpg.jpg']
    inferencer = FewShotInferencer(project['model'], img_size=NET_SIZE)
    for name, (h, w) in QUERIES.items():
        query = osp.join(project['folder'], name)
        saved = np.asarray(Image.open(osp.join(out, 'pred', name + '.png')))
        assert saved.shape == (h, w), name  # each query's own mask
        expected = inferencer(query, support_imgs=[project['support']],
                              support_masks=[project['mask']])['predictions']
        np.testing.assert_array_equal(saved, expected * 255)
    logged = ' '.join(log_capture.messages(logging.INFO))
    assert "named after each query's file name" in logged
    assert 'a.jpg -> pred/a.jpg.png + vis/a.jpg.jpg' in logged


def test_a_name_depends_on_its_query_alone(project):
    files = sorted(osp.join(project['folder'], n) for n in QUERIES)
    together = result_names([(f, f) for f in files])
    alone = [result_names([(f, f)])[0] for f in files]
    assert together == alone == ['a.jpg', 'a.png', 'a_1.jpg']
    arrays = [(np.zeros((4, 4, 3), np.uint8), 'query array #0'),
              (files[0], files[0])]
    assert result_names(arrays) == ['00000000', 'a.jpg']


def test_the_same_file_name_twice_is_refused_before_any_work(
        project, log_capture):
    other = project['root'] / 'other'
    other.mkdir(exist_ok=True)
    Image.open(osp.join(project['folder'], 'a.png')).save(other / 'a.png')
    out = str(project['root'] / 'twice')
    args = cli_args(project, out, project['folder'], str(other))
    assert load_tool('tools/infer.py').main(args) == 2
    assert any("photos/a.png' and" in m and "other/a.png'" in m
               and 'same file name' in m
               for m in log_capture.messages(logging.ERROR))
    assert not osp.exists(out)


def test_results_written_to_a_folder_need_not_be_kept(project):
    """return_predictions=False (what tools/infer.py passes): the masks are
    written, none is kept for the returned dict."""
    inferencer = FewShotInferencer(project['model'], img_size=NET_SIZE)
    out = str(project['root'] / 'not_kept')
    result = inferencer(project['folder'], support_imgs=[project['support']],
                        support_masks=[project['mask']], out_dir=out,
                        batch_size=2, return_predictions=False)
    assert result['predictions'] == [] and result['failed'] == []
    assert len(result['img_paths']) == 3
    assert len(os.listdir(osp.join(out, 'pred'))) == 3
