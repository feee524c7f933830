"""tools/deployment/pytorch2onnx.py and dcama_mm.deploy: the exported
graphs on onnxruntime against PyTorch.

Tiny DCAMAs of tests/test_models/dcama_cases.py (a ResNet-50 of base width
8 and a Swin-B-layout transformer of width 16; random weights) at 64x64,
exported once each from a checkpoint file with the real tool.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from tests.test_models.dcama_cases import model_cfg, random_episode
from tests.test_tools.tiny_project import load_tool

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

SIZE = 64
CONFIG = """\
default_scope = 'mmseg'
custom_imports = dict(imports=['dcama_mm'], allow_failed_imports=False)
model = {model!r}
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=({size}, {size}), keep_ori_seg=True),
    dict(type='PackFewShotInputs'),
]))
visualizer = dict(type='FewShotLocalVisualizer')
"""


def _write_project(root, backbone, seed=0):
    from dcama_mm.apis import init_model
    config = osp.join(root, f'{backbone}.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(model=model_cfg(backbone), size=SIZE))
    torch.manual_seed(seed)
    model = init_model(config)
    # centre the random model's foreground logit, so that its masks have
    # both classes
    query, supports, masks = random_episode(1, 2, (SIZE, SIZE), seed=7)
    with torch.no_grad():
        logits = model.predict_logits(query, supports, masks)
        model.decode_head.mixers[2][2].bias[1] -= (
            logits[:, 1] - logits[:, 0]).median()
    checkpoint = osp.join(root, f'{backbone}.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('a', 'b')))),
               checkpoint)
    return config, checkpoint


@pytest.fixture(scope='module', params=['r50', 'swin'])
def exported(request, tmp_path_factory):
    from dcama_mm.apis import init_model
    root = str(tmp_path_factory.mktemp(f'onnx_{request.param}'))
    config, checkpoint = _write_project(root, request.param)
    out_dir = osp.join(root, 'onnx')
    tool = load_tool('deployment/pytorch2onnx.py')
    result = tool.main([config, checkpoint, out_dir, '--size', str(SIZE),
                        str(SIZE), '--shots', '2'])
    model = init_model(config, checkpoint)
    return dict(root=root, config=config, checkpoint=checkpoint,
                out_dir=out_dir, model=model, result=result,
                backbone=request.param)


@pytest.mark.parametrize('shots, batch', [(1, 1), (1, 2), (5, 2)])
def test_onnx_logits_equal_pytorch(exported, shots, batch):
    from dcama_mm.deploy import ONNXFewShotSegmentor
    # the tool checked its own episode
    assert exported['result']['max_abs_diff'] < 1e-4
    model = exported['model']
    query, supports, masks = random_episode(batch, shots, (SIZE, SIZE),
                                            seed=shots)
    with torch.no_grad():
        expected = model.predict_logits(
            query, supports=model.encode_supports(supports[0], masks[0]))
    runtime = ONNXFewShotSegmentor(exported['out_dir'], threads=1)
    encoded = runtime.encode_supports(supports[0], masks[0])
    assert encoded.shots == shots
    got = runtime.predict_logits(query, encoded)
    assert got.shape == (batch, 2, SIZE, SIZE)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # not trivially equal: the logits vary over the image
    assert expected.std() > 1e-3


def _images(seed, count):
    rng = np.random.default_rng(seed)
    imgs, masks = [], []
    for k in range(count):
        h, w = 48 + 8 * k, 80 - 4 * k
        imgs.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4:3 * h // 4, w // 3:] = 255
        masks.append(mask)
    return imgs, masks


@pytest.mark.parametrize('shots', [1, 5])
def test_predictor_masks_equal_inferencer(exported, shots, tmp_path):
    from dcama_mm.apis import FewShotInferencer
    from dcama_mm.deploy import ONNXFewShotPredictor
    supports, masks = _images(shots, shots)
    queries, _ = _images(100 + shots, 3)
    inferencer = FewShotInferencer(exported['model'], device='cpu')
    predictor = ONNXFewShotPredictor(exported['out_dir'])
    assert predictor.img_size == (SIZE, SIZE)
    expected = inferencer(queries, supports, masks, batch_size=2,
                          return_probs=True)
    got = predictor(queries, supports, masks, batch_size=2,
                    return_probs=True, out_dir=str(tmp_path))
    assert len(got['predictions']) == len(queries)
    for ours, theirs, query in zip(got['predictions'],
                                   expected['predictions'], queries):
        assert ours['sem_seg'].shape == query.shape[:2]  # original size
        np.testing.assert_array_equal(ours['sem_seg'], theirs['sem_seg'])
        np.testing.assert_allclose(ours['fg_prob'], theirs['fg_prob'],
                                   rtol=1e-4, atol=1e-4)
    # the inferencer's outputs: a mask and a picture per query
    assert len(list((tmp_path / 'pred').glob('*.png'))) == len(queries)
    assert len(list((tmp_path / 'vis').glob('*.jpg'))) == len(queries)
    # the support set is kept between calls, as by the inferencer
    again = predictor(queries[0])['predictions']
    np.testing.assert_array_equal(again, expected['predictions'][0]['sem_seg'])
    # both classes are predicted (a centred foreground bias, see
    # _write_project): the masks are not trivially equal
    fractions = [p['sem_seg'].mean() for p in got['predictions']]
    assert 0.05 < np.mean(fractions) < 0.95


def test_graph_files(exported):
    import onnx
    from dcama_mm.deploy import OPSET
    from dcama_mm.deploy.onnx_export import encoded_names
    files = exported['result']['files']
    num_blocks = exported['model'].backbone.num_blocks
    names = encoded_names(num_blocks)
    support = onnx.load(files['support'])
    query = onnx.load(files['query'])
    onnx.checker.check_model(support)
    onnx.checker.check_model(query)
    assert {o.version for o in support.opset_import if o.domain in
            ('', 'ai.onnx')} == {OPSET}
    # only standard ONNX operators (no custom or fused-kernel ops)
    for graph in (support.graph, query.graph):
        assert {n.domain for n in graph.node} <= {''}

    def dims(value):
        return [d.dim_param or d.dim_value
                for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in support.graph.input] == ['support_imgs',
                                                     'support_masks']
    assert dims(support.graph.input[0]) == ['shots', 3, SIZE, SIZE]
    assert [o.name for o in support.graph.output] == names + [
        'encoded_masks'
    ]
    assert [i.name for i in query.graph.input] == ['query_imgs'] + names + [
        'encoded_masks'
    ]
    assert dims(query.graph.input[0]) == ['batch', 3, SIZE, SIZE]
    assert dims(query.graph.output[0])[0] == 'batch'
    assert dims(query.graph.input[-1]) == ['shots', SIZE, SIZE]
    # stage 1's last block, all of stages 2-4
    assert len(names) == 1 + sum(num_blocks[1:])


def test_export_leaves_the_model_as_it_was(exported):
    from dcama_mm.deploy import export_onnx
    from dcama_mm.models.utils.fast_paths import fast_path_report
    model = exported['model']
    before = fast_path_report(model)
    query, supports, masks = random_episode(1, 1, (SIZE, SIZE))
    with torch.no_grad():
        expected = model.predict_logits(query, supports, masks)
    export_onnx(model, osp.join(exported['root'], 'again'), (SIZE, SIZE))
    assert not any(m.training for m in model.modules())
    assert fast_path_report(model) == before
    assert 'window_reverse' not in {
        k for m in model.modules() for k in vars(m)
    }
    with torch.no_grad():
        assert torch.equal(model.predict_logits(query, supports, masks),
                           expected)


def test_traceable_window_reverse_equals_mmpretrain():
    from mmpretrain.models.utils import ShiftWindowMSA
    from dcama_mm.deploy import traceable_window_reverse
    for batch, h, w, size in ((1, 8, 8, 2), (3, 12, 24, 4), (2, 6, 6, 6)):
        windows = torch.randn(batch * (h // size) * (w // size), size, size,
                              5)
        assert torch.equal(traceable_window_reverse(windows, h, w, size),
                           ShiftWindowMSA.window_reverse(windows, h, w, size))


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------
def test_checkpoint_of_another_model_is_refused(exported, tmp_path):
    other = 'swin' if exported['backbone'] == 'r50' else 'r50'
    _, checkpoint = _write_project(str(tmp_path), other)
    tool = load_tool('deployment/pytorch2onnx.py')
    with pytest.raises(ValueError) as info:
        tool.main([exported['config'], checkpoint, str(tmp_path / 'o')])
    message = str(info.value)
    assert f'Checkpoint "{checkpoint}" does not fit the model of config ' \
        f'"{exported["config"]}"' in message
    assert "weights are missing from it (e.g. backbone." in message
    assert 'keys are not in the model' in message
    assert 'Give the config the checkpoint was made with.' in message
    assert not (tmp_path / 'o').exists()


def test_checkpoint_of_another_width_is_refused(exported, tmp_path):
    state = torch.load(exported['checkpoint'], weights_only=False)
    key = 'decode_head.mixers.2.2.weight'
    state['state_dict'][key] = state['state_dict'][key][:, :1]
    bad = str(tmp_path / 'bad.pth')
    torch.save(state, bad)
    tool = load_tool('deployment/pytorch2onnx.py')
    with pytest.raises(ValueError, match=rf'1 has another shape \(e.g. '
                       rf'{key}: \[2, 1, 3, 3\] in the file, \[2, 16, 3, 3\] '
                       r'in the model\)'):
        tool.main([exported['config'], bad, str(tmp_path / 'o')])
    with pytest.raises(FileNotFoundError,
                       match='the checkpoint ".*missing.pth" does not exist'):
        tool.main([exported['config'], str(tmp_path / 'missing.pth'),
                   str(tmp_path / 'o')])


def test_export_refuses_to_overwrite_an_export(exported, tmp_path):
    import shutil
    tool = load_tool('deployment/pytorch2onnx.py')
    out_dir = str(tmp_path / 'onnx')
    shutil.copytree(exported['out_dir'], out_dir)
    names = ('config.py', 'deploy.json', 'query_segmentor.onnx',
             'support_encoder.onnx')
    before = {n: osp.getmtime(osp.join(out_dir, n)) for n in names}
    # one file of an earlier export is enough
    partial = tmp_path / 'partial'
    partial.mkdir()
    (partial / 'deploy.json').write_text('{"keep": 1}')
    with pytest.raises(FileExistsError, match='partial/deploy.json: choose'):
        tool.main([exported['config'], exported['checkpoint'],
                   str(partial)])
    assert (partial / 'deploy.json').read_text() == '{"keep": 1}'
    # refused before the checkpoint is read or the model built: a missing
    # checkpoint is not even looked at
    with pytest.raises(FileExistsError) as info:
        tool.main([exported['config'], str(tmp_path / 'missing.pth'),
                   out_dir, '--size', str(SIZE), str(SIZE)])
    message = str(info.value)
    assert message.startswith('Export file(s) already exist: ')
    for name in names[:3]:
        assert osp.join(out_dir, name) in message
    assert 'and 1 more: choose another OUT_DIR, or pass --force' in message
    assert {n: osp.getmtime(osp.join(out_dir, n)) for n in names} == before
    # OUT_DIR that is a file
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    with pytest.raises(NotADirectoryError, match='a_file is a file, not a '
                       'folder'):
        tool.main([exported['config'], exported['checkpoint'],
                   str(a_file)])
    if exported['backbone'] != 'r50':
        return  # one --force export is enough
    # --force overwrites: the graphs are written again and still run
    result = tool.main([exported['config'], exported['checkpoint'],
                        str(partial), '--size', str(SIZE), str(SIZE),
                        '--force'])
    assert result['max_abs_diff'] < 1e-4
    assert json.loads((partial / 'deploy.json').read_text())['size'] == [
        SIZE, SIZE]


def test_unsupported_sizes_are_refused(exported, tmp_path):
    from dcama_mm.deploy import ONNXFewShotPredictor, ONNXFewShotSegmentor
    tool = load_tool('deployment/pytorch2onnx.py')
    with pytest.raises(ValueError, match='--size 60 60: the ONNX export '
                       'supports H and W that are positive multiples of 32'):
        tool.main([exported['config'], exported['checkpoint'],
                   str(tmp_path / 'o'), '--size', '60', '60'])
    runtime = ONNXFewShotSegmentor(exported['out_dir'])
    query, supports, masks = random_episode(1, 1, (96, 96))
    with pytest.raises(ValueError, match='are 96x96 but the ONNX graphs in '
                       '.* were exported for 64x64'):
        runtime.encode_supports(supports[0], masks[0])
    encoded = runtime.encode_supports(*[
        t[0] for t in random_episode(1, 1, (SIZE, SIZE))[1:]])
    with pytest.raises(ValueError, match='The query images are 96x96'):
        runtime.predict_logits(query, encoded)
    with pytest.raises(FileNotFoundError, match='OUT_DIR of tools/'
                       'deployment/pytorch2onnx.py'):
        ONNXFewShotPredictor(str(tmp_path / 'nothing'))


def test_benchmark_tool_times_both_runtimes(exported):
    tool = load_tool('deployment/benchmark_onnx.py')
    rows = tool.main([exported['config'], '--size', str(SIZE), str(SIZE),
                      '--shots', '1', '2', '--repeat', '1', '--warmup', '0',
                      '--threads', '1', '--onnx-dir', exported['out_dir']])
    assert [r['shots'] for r in rows] == [1, 2]
    for row in rows:
        assert row['pytorch_s'] > 0 and row['onnxruntime_s'] > 0


# the rule does not depend on the backbone: ResNet-50 only
@pytest.mark.parametrize('exported', ['r50'], indirect=True)
def test_benchmark_tool_keeps_a_partial_export(exported, tmp_path):
    """An --onnx-dir with export files but no query graph is not written
    over (the message names the tool's own options), unless --force."""
    tool = load_tool('deployment/benchmark_onnx.py')
    onnx_dir = tmp_path / 'partial'
    onnx_dir.mkdir()
    (onnx_dir / 'deploy.json').write_text('{"mine": 1}')
    args = [exported['config'], '--size', str(SIZE), str(SIZE), '--shots',
            '1', '--repeat', '1', '--warmup', '0', '--threads', '1',
            '--onnx-dir', str(onnx_dir)]
    with pytest.raises(FileExistsError) as info:
        tool.main(args)
    assert str(info.value).endswith(
        'choose another --onnx-dir, or pass --force to overwrite them.')
    assert sorted(p.name for p in onnx_dir.iterdir()) == ['deploy.json']
    assert (onnx_dir / 'deploy.json').read_text() == '{"mine": 1}'
    rows = tool.main(args + ['--force'])
    assert [r['shots'] for r in rows] == [1]
    assert json.loads((onnx_dir / 'deploy.json').read_text()) != {'mine': 1}


# the rule does not depend on the backbone: ResNet-50 only
@pytest.mark.parametrize('exported', ['r50'], indirect=True)
def test_benchmark_tool_refuses_an_export_of_another_model(exported,
                                                           tmp_path):
    """A complete export of another size or architecture is not timed as
    if it were this model's (its figures would be another model's):
    refused naming the first difference; --force exports this model."""
    import shutil
    tool = load_tool('deployment/benchmark_onnx.py')
    onnx_dir = str(tmp_path / 'onnx')
    shutil.copytree(exported['out_dir'], onnx_dir)
    args = [exported['config'], '--shots', '1', '--repeat', '1', '--warmup',
            '0', '--threads', '1', '--onnx-dir', onnx_dir]
    with pytest.raises(ValueError) as info:
        tool.main(args + ['--size', str(2 * SIZE), str(2 * SIZE)])
    assert str(info.value) == (
        f'--onnx-dir {onnx_dir} holds an export that does not fit '
        f'{exported["config"]}: it was exported at {SIZE}x{SIZE}, not '
        f'{2 * SIZE}x{2 * SIZE} (--size). Its figures would be those of '
        'another model: give another --onnx-dir, or --force to export '
        'this model there.')
    wider = args + ['--size', str(SIZE), str(SIZE), '--cfg-options',
                    'model.decode_head.channels=64']
    with pytest.raises(ValueError, match='model.decode_head.channels is '
                       'set only here. Its figures would be'):
        tool.main(wider)
    graph = osp.join(onnx_dir, 'query_segmentor.onnx')
    before = open(graph, 'rb').read()
    rows = tool.main(wider + ['--force'])
    assert [r['shots'] for r in rows] == [1]
    assert open(graph, 'rb').read() != before
    assert tool.main(wider)  # now the export fits


# the rule does not depend on the backbone: ResNet-50 only
@pytest.mark.parametrize('exported', ['r50'], indirect=True)
def test_api_export_refuses_to_overwrite_an_export(exported, tmp_path):
    """``export_onnx`` keeps an earlier export unless ``force=True``."""
    import os
    from dcama_mm.deploy import export_onnx
    model, out_dir = exported['model'], str(tmp_path / 'onnx')
    files = export_onnx(model, out_dir, (SIZE, SIZE))
    names = sorted(os.listdir(out_dir))
    first = {n: (tmp_path / 'onnx' / n).read_bytes() for n in names}
    with pytest.raises(FileExistsError) as info:
        export_onnx(model, out_dir, (SIZE, 2 * SIZE))
    message = str(info.value)
    assert message.startswith('Export file(s) already exist: '
                              f'{osp.join(out_dir, "config.py")}, ')
    assert message.endswith('and 1 more: choose another out_dir, or pass '
                            'force=True to overwrite them.')
    assert sorted(os.listdir(out_dir)) == names
    assert {n: (tmp_path / 'onnx' / n).read_bytes() for n in names} == first
    # a dangling link where an export file would go is refused too
    linked = tmp_path / 'linked'
    linked.mkdir()
    os.symlink(str(tmp_path / 'nowhere'), str(linked / 'deploy.json'))
    with pytest.raises(FileExistsError, match='linked/deploy.json: choose'):
        export_onnx(model, str(linked), (SIZE, SIZE))
    assert sorted(os.listdir(linked)) == ['deploy.json']
    # force=True writes the new export over the old one
    assert export_onnx(model, out_dir, (SIZE, 2 * SIZE),
                       force=True) == files
    assert json.loads((tmp_path / 'onnx' / 'deploy.json').read_text())[
        'size'] == [SIZE, 2 * SIZE]
    assert (tmp_path / 'onnx' / 'query_segmentor.onnx').read_bytes() != \
        first['query_segmentor.onnx']
