"""Reference DCAMA checkpoint -> dcama_mm: converter function and CLI."""
import importlib.util
import os.path as osp

import pytest
import torch

import dcama_mm  # noqa: F401
from dcama_mm.models.utils import (convert_dcama_checkpoint,
                                   inspect_dcama_checkpoint)
from tests.test_models.dcama_cases import (build_reference, build_segmentor,
                                           random_episode,
                                           reference_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cli():
    spec = importlib.util.spec_from_file_location(
        'dcama2mmseg',
        osp.join(REPO, 'tools', 'model_converters', 'dcama2mmseg.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def swin_ckpt():
    reference = build_reference('swin', seed=2)
    return reference, reference_checkpoint(reference)


def test_inspect_reports_layout(swin_ckpt):
    _, ckpt = swin_ckpt
    assert inspect_dcama_checkpoint(ckpt) == dict(
        backbone='swin', num_blocks=(2, 2, 2, 2),
        in_channels=(16, 32, 64, 128))
    resnet = reference_checkpoint(build_reference('r101'))
    assert inspect_dcama_checkpoint(resnet) == dict(
        backbone='resnet', num_blocks=(3, 4, 23, 3),
        in_channels=(32, 64, 128, 256))


def test_conversion_is_complete_and_pure(swin_ckpt):
    _, ckpt = swin_ckpt
    before = dict(ckpt)
    converted = convert_dcama_checkpoint(ckpt)
    assert ckpt.keys() == before.keys()
    segmentor = build_segmentor('swin')
    result = segmentor.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the same weights, renamed
    torch.testing.assert_close(
        converted['decode_head.attentions.2.key_proj.weight'],
        ckpt['module.model.DCAMA_blocks.2.linears.1.weight'])
    torch.testing.assert_close(
        converted['decode_head.mask_convs.2.3.weight'],
        ckpt['module.model.conv1.3.weight'])
    # no 'module.' prefix and a 'state_dict' wrapper work as well
    plain = {k[len('module.'):]: v for k, v in ckpt.items()}
    assert convert_dcama_checkpoint(
        dict(state_dict=plain)).keys() == converted.keys()


def test_cli_output_loads_with_init_model(swin_ckpt, tmp_path, capsys):
    from dcama_mm.apis.inference import init_model
    from tests.test_models.dcama_cases import model_cfg
    reference, ckpt = swin_ckpt
    src, dst = tmp_path / 'ref.pt', tmp_path / 'out' / 'dcama.pth'
    torch.save(ckpt, src)
    cli = _cli()
    cli.main([str(src), str(dst)])
    out = capsys.readouterr().out
    assert 'swin backbone' in out and str(dst) in out

    cfg = model_cfg('swin')
    # the ImageNet file does not exist: init_model must not need it
    cfg['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'missing_imagenet.pth'))
    config = tmp_path / 'tiny_dcama.py'
    config.write_text(f'default_scope = "mmseg"\n'
                      f'custom_imports = dict(imports=["dcama_mm"])\n'
                      f'model = {cfg!r}\n')
    model = init_model(str(config), str(dst))
    assert not model.training and model.cfg.model.backbone.init_cfg is None
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert set(saved) == set(model.state_dict())

    query, supports, masks = random_episode(1, 2, (64, 64), seed=11)
    with torch.no_grad():
        torch.testing.assert_close(
            model.predict_logits(query, supports, masks),
            reference(query, supports, masks),
            rtol=1e-4,
            atol=1e-4)

    # refuses to overwrite without --force
    mtime = osp.getmtime(dst)
    with pytest.raises(SystemExit):
        cli.main([str(src), str(dst)])
    assert 'pass --force' in capsys.readouterr().err
    assert osp.getmtime(dst) == mtime
    cli.main([str(src), str(dst), '--force'])


def test_cli_rejects_missing_and_foreign_files(tmp_path, capsys):
    cli = _cli()
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / 'nope.pt'), str(tmp_path / 'x.pth')])
    assert 'does not exist' in capsys.readouterr().err
    foreign = tmp_path / 'foreign.pt'
    torch.save({'backbone.conv1.weight': torch.zeros(1)}, foreign)
    with pytest.raises(SystemExit):
        cli.main([str(foreign), str(tmp_path / 'x.pth')])
    assert 'dcama_mm (mmseg) checkpoint already' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()


def test_unrecognised_layouts(swin_ckpt):
    _, ckpt = swin_ckpt
    with pytest.raises(ValueError, match='module.feature_extractor'):
        convert_dcama_checkpoint({'foo.weight': torch.zeros(1)})
    head_only = {k: v for k, v in ckpt.items() if '.model.' in k}
    with pytest.raises(ValueError, match='Unrecognised checkpoint layout'):
        convert_dcama_checkpoint(head_only)
    extra = dict(ckpt)
    extra['module.model.conv9.0.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='conv9'):
        convert_dcama_checkpoint(extra)
    bad_backbone = {
        k.replace('patch_embed.proj', 'patch_embed.projection'): v
        for k, v in ckpt.items()
    }
    with pytest.raises(ValueError, match='Unrecognised backbone'):
        convert_dcama_checkpoint(bad_backbone)
    with pytest.raises(ValueError, match='dict of tensors'):
        convert_dcama_checkpoint([1, 2])
