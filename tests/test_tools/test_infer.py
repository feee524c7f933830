"""Tests of tools/infer.py (in-process) and the inferencer benchmark tool."""
import importlib.util
import logging
import os
import os.path as osp
import shutil
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from tests.test_apis.inferencer_helpers import (NET_SIZE, write_episode_files,
                                                write_tiny_model_files)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(relpath: str) -> ModuleType:
    """Import a script under tools/ as a module."""
    path = osp.join(REPO, relpath)
    name = osp.splitext(osp.basename(path))[0] + '_under_test'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def infer_tool() -> ModuleType:
    return load_tool('tools/infer.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny config + checkpoint, 2 supports and a folder of 3 queries."""
    root = tmp_path_factory.mktemp('cli')
    model, cfg_file, ckpt = write_tiny_model_files(str(root))
    data = root / 'data'
    data.mkdir()
    supports, masks, queries = write_episode_files(
        str(data), shots=2, query_sizes=[(37, 53), (48, 96), (33, 33)])
    query_dir = root / 'queries'
    query_dir.mkdir()
    for q in queries:
        shutil.copy(q, query_dir)
    return dict(
        model=model,
        cfg=cfg_file,
        ckpt=ckpt,
        supports=supports,
        masks=masks,
        queries=sorted(str(query_dir / osp.basename(q)) for q in queries),
        query_dir=str(query_dir),
        root=root)


def cli_args(setup, out, *extra):
    args = [setup['cfg'], setup['ckpt']]
    for img, mask in zip(setup['supports'], setup['masks']):
        args += ['--support', f'{img}:{mask}']
    args += ['--query', setup['query_dir'], '--out', out,
             '--img-size', str(NET_SIZE), '--batch-size', '2',
             '--device', 'cpu']
    return args + list(extra)


def test_parse_support(infer_tool):
    assert infer_tool.parse_support('a/b.jpg:a/b.png') == ('a/b.jpg',
                                                           'a/b.png')
    with pytest.raises(ValueError, match='b.jpg.*no mask'):
        infer_tool.parse_support('a/b.jpg')
    with pytest.raises(ValueError, match='no mask'):
        infer_tool.parse_support('a/b.jpg:')


def test_cli_writes_masks_and_overlays(infer_tool, setup, capsys):
    out = str(setup['root'] / 'out')
    assert infer_tool.main(cli_args(setup, out)) == 0
    expected = FewShotInferencer(setup['model'], img_size=NET_SIZE)(
        setup['queries'],
        support_imgs=setup['supports'],
        support_masks=setup['masks'])['predictions']
    assert sorted(os.listdir(osp.join(out, 'pred'))) == [
        'query0.png.png', 'query1.png.png', 'query2.png.png'
    ]
    assert sorted(os.listdir(osp.join(out, 'vis'))) == [
        'query0.png.jpg', 'query1.png.jpg', 'query2.png.jpg'
    ]
    for query, mask in zip(setup['queries'], expected):
        name = osp.basename(query)
        saved = np.asarray(Image.open(osp.join(out, 'pred', name + '.png')))
        assert saved.shape == np.asarray(Image.open(query)).shape[:2]
        np.testing.assert_array_equal(saved, mask * 255)
    # the progress bar counted the 3 queries
    assert '3/3' in capsys.readouterr().out

    # refuses to overwrite: exit status 2, files untouched
    pred_file = osp.join(out, 'pred', 'query0.png.png')
    before = osp.getmtime(pred_file)
    assert infer_tool.main(cli_args(setup, out)) == 2
    assert osp.getmtime(pred_file) == before
    assert infer_tool.main(cli_args(setup, out, '--force')) == 0


def test_cli_masks_only_and_reusable_mask(infer_tool, setup):
    out = str(setup['root'] / 'masks_only')
    assert infer_tool.main(cli_args(setup, out, '--no-overlay')) == 0
    assert not osp.exists(osp.join(out, 'vis'))
    # a written 0/255 mask works as a support mask of its query
    query = setup['queries'][1]
    mask = osp.join(out, 'pred', 'query1.png.png')
    out2 = str(setup['root'] / 'chained')
    args = [setup['cfg'], setup['ckpt'], '--support', f'{query}:{mask}',
            '--query', setup['queries'][0], '--out', out2,
            '--img-size', str(NET_SIZE)]
    assert infer_tool.main(args) == 0
    assert osp.isfile(osp.join(out2, 'pred', 'query0.png.png'))


def test_cli_bad_inputs(infer_tool, setup, log_capture):
    out = str(setup['root'] / 'bad')
    # a support without a mask
    args = [setup['cfg'], setup['ckpt'], '--support', setup['supports'][0],
            '--query', setup['query_dir'], '--out', out]
    assert infer_tool.main(args) == 2
    assert any('no mask' in m and 'support0.png' in m
               for m in log_capture.messages(logging.ERROR))
    assert not osp.exists(out)

    # an empty query folder
    empty = setup['root'] / 'empty_queries'
    empty.mkdir()
    args = cli_args(setup, out)
    args[args.index(setup['query_dir'])] = str(empty)
    assert infer_tool.main(args) == 2
    assert any('empty_queries' in m and 'holds no image' in m
               for m in log_capture.messages(logging.ERROR))

    # an unreadable query among good ones: the others are written
    mixed = setup['root'] / 'mixed_queries'
    mixed.mkdir()
    shutil.copy(setup['queries'][0], mixed)
    (mixed / 'corrupt.jpg').write_bytes(b'\x00\x01 not an image')
    args = cli_args(setup, out)
    args[args.index(setup['query_dir'])] = str(mixed)
    assert infer_tool.main(args) == 1
    assert os.listdir(osp.join(out, 'pred')) == ['query0.png.png']
    assert any('corrupt.jpg' in m
               for m in log_capture.messages(logging.ERROR))


def test_benchmark_tool_reports_equal_masks_and_times(setup):
    tool = load_tool('tools/analysis_tools/benchmark_inferencer.py')
    inferencer = FewShotInferencer(setup['model'], img_size=NET_SIZE)
    row = tool.benchmark(inferencer, num_queries=4, shots=2, batch_size=2,
                         query_size=(40, 50))
    assert row['masks_equal'] == 1.0
    assert row['max_prob_diff'] < 1e-5
    assert row['reuse_s'] > 0 and row['no_reuse_s'] > 0
    assert row['saving'] == pytest.approx(
        1 - row['reuse_s'] / row['no_reuse_s'])
    table = tool.format_table([dict(row, shots=2)], num_queries=4)
    assert '| 2 | 4 |' in table and 'yes' in table


def test_cli_cfg_option_resize_to_original_is_honoured(infer_tool, setup):
    """``--cfg-options model.test_cfg.resize_to_original=False`` gives
    masks at the network size (it was accepted and ignored: the
    inferencer's own default won)."""
    out = str(setup['root'] / 'net_size')
    assert infer_tool.main(cli_args(
        setup, out, '--cfg-options',
        'model.test_cfg.resize_to_original=False')) == 0
    expected = FewShotInferencer(setup['model'], img_size=NET_SIZE)(
        setup['queries'],
        support_imgs=setup['supports'],
        support_masks=setup['masks'],
        resize_to_original=False)['predictions']
    for query, mask in zip(setup['queries'], expected):
        saved = np.asarray(Image.open(
            osp.join(out, 'pred', osp.basename(query) + '.png')))
        assert saved.shape == (NET_SIZE, NET_SIZE) == mask.shape
        np.testing.assert_array_equal(saved, mask * 255)
    # the API: cfg_options sets the default of the calls, an argument wins
    inferencer = FewShotInferencer(
        setup['cfg'], setup['ckpt'], device='cpu', img_size=NET_SIZE,
        cfg_options={'model.test_cfg.resize_to_original': False})
    query = setup['queries'][1]
    args = dict(support_imgs=setup['supports'],
                support_masks=setup['masks'])
    assert inferencer(query, **args)['predictions'].shape == (NET_SIZE,
                                                              NET_SIZE)
    assert inferencer(query, resize_to_original=True,
                      **args)['predictions'].shape == (48, 96)
    from dcama_mm.apis.inference_inputs import resize_option
    for options in ({'model.test_cfg': dict(resize_to_original=False)},
                    {'model': dict(test_cfg=dict(resize_to_original=False))},
                    {'model.test_cfg.resize_to_original': False,
                     'test_dataloader.dataset.pipeline.1.scale': (64, 64)}):
        assert resize_option(options) is False, options
    assert resize_option(None) is resize_option({'fold': 1}) is True
    with pytest.raises(ValueError, match="resize_to_original='False': give "
                       'True or False'):
        resize_option({'model.test_cfg.resize_to_original': 'False'})


def test_query_folder_says_what_it_skips(setup, tmp_path, log_capture):
    """A query folder gives its image files; what else it holds (other
    files, subfolders, broken links) is skipped, and the log says so."""
    from dcama_mm.apis.inference_inputs import collect_queries
    folder = tmp_path / 'photos'
    folder.mkdir()
    for query in setup['queries'][:2]:
        shutil.copy(query, folder)
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'more').mkdir()
    os.symlink(str(tmp_path / 'gone.png'), str(folder / 'link.png'))
    queries = collect_queries(str(folder))
    assert [osp.basename(q) for q, _ in queries] == ['query0.png',
                                                     'query1.png']
    warnings = log_capture.messages(logging.WARNING)
    assert warnings == [
        f"Query folder '{folder}': 2 image(s); skipped 3 entries that are "
        "not image files (link.png: a broken link, more: a folder, not "
        "searched, notes.txt)."
    ], warnings
    log_capture.records.clear()
    collect_queries(setup['query_dir'])
    assert log_capture.messages(logging.WARNING) == []


def test_cli_out_that_is_a_file_is_refused(infer_tool, setup, log_capture):
    existing = setup['root'] / 'existing.txt'
    existing.write_text('keep me\n')
    # refused before the model is built: a checkpoint that does not exist
    # is not even looked at
    args = cli_args(setup, str(existing))
    args[1] = str(setup['root'] / 'missing.pth')
    assert infer_tool.main(args) == 2
    errors = log_capture.messages(logging.ERROR)
    assert any(f'--out {existing}: {existing} is a file, not a folder' in m
               for m in errors), errors
    assert not any('missing.pth' in m for m in errors)
    assert existing.read_text() == 'keep me\n'
    # a sub-folder that is a file: OUT/pred
    out = setup['root'] / 'pred_is_a_file'
    out.mkdir()
    (out / 'pred').write_text('')
    assert infer_tool.main(cli_args(setup, str(out))) == 2
    assert any(f'{out / "pred"} is a file, not a folder' in m
               for m in log_capture.messages(logging.ERROR))


def test_api_out_dir_that_is_a_file_is_refused(setup, tmp_path):
    existing = tmp_path / 'existing.txt'
    existing.write_text('keep me\n')
    inferencer = FewShotInferencer(setup['model'], device='cpu',
                                   img_size=NET_SIZE)
    with pytest.raises(NotADirectoryError,
                       match=f'out_dir {existing}: {existing} is a file, '
                       'not a folder'):
        inferencer(setup['queries'], support_imgs=setup['supports'],
                   support_masks=setup['masks'], out_dir=str(existing))
    assert existing.read_text() == 'keep me\n'
