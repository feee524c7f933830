"""Tests of FewShotInferencer on a tiny random DCAMA and small tmp images."""
import copy
import logging
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from PIL import Image

import dcama_mm  # noqa: F401  (registers the modules)
from dcama_mm.apis import FewShotInferencer
from dcama_mm.datasets.synthetic import make_synthetic_fss1000
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from tests.device_helpers import tolerances

NET_SIZE = 64
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]

TINY_MODEL = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(
        type='FewShotDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True),
    backbone=dict(
        type='BlockFeatureSwin',
        arch=dict(embed_dims=16, depths=[1, 1, 2, 1], num_heads=[1, 1, 2,
                                                                 2]),
        img_size=NET_SIZE,
        window_size=4),
    decode_head=dict(
        type='DCAMAHead', in_channels=[16, 32, 64, 128],
        num_blocks=[1, 1, 2, 1]))

CONFIG_TEXT = f"""
default_scope = 'mmseg'
custom_imports = dict(imports=['dcama_mm'], allow_failed_imports=False)
model = {TINY_MODEL!r}
"""


def build_tiny_model() -> nn.Module:
    """A tiny DCAMA whose last bias puts its decision boundary mid-image.

    With random weights the 2-class logits are nearly constant, so every
    pixel would be background and mask comparisons would prove nothing: the
    foreground bias is shifted so that about half of a typical query's
    pixels are foreground.
    """
    torch.manual_seed(0)
    model = MODELS.build(TINY_MODEL).eval()
    rng = np.random.default_rng(1)
    query = torch.from_numpy(make_image(rng, 48, 48)).permute(2, 0, 1)
    support = torch.from_numpy(make_image(rng, 48, 48)).permute(2, 0, 1)
    mask = torch.zeros(1, 1, NET_SIZE, NET_SIZE)
    mask[..., 16:48, 16:48] = 1
    pre = model.data_preprocessor
    with torch.no_grad():
        q = pre.normalize(F.interpolate(query[None].float(), NET_SIZE))
        s = pre.normalize(F.interpolate(support[None].float(), NET_SIZE))
        logits = model.predict_logits(q, s[:, None], mask)
        diff = (logits[:, 1] - logits[:, 0]).median()
        last_conv = model.decode_head.mixers[-1][-1]
        last_conv.bias[1] -= diff
    return model


def make_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A BGR uint8 picture: smooth background and a bright blob."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([
        128 + 60 * np.sin(xx / 5 + rng.uniform(0, 6)),
        128 + 60 * np.cos(yy / 7 + rng.uniform(0, 6)),
        rng.uniform(0, 255, (h, w)),
    ], axis=2)
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    blob = ((yy - cy)**2 + (xx - cx)**2) < (min(h, w) / 4)**2
    img[blob] = (30, 200, 240)
    return img.clip(0, 255).astype(np.uint8)


def make_mask(h: int, w: int, value: int = 255) -> np.ndarray:
    """A 0/``value`` mask with a centred rectangle."""
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4:3 * h // 4, w // 5:4 * w // 5] = value
    return mask


def write_image(path: str, img_bgr: np.ndarray) -> str:
    """Save a BGR array as a lossless PNG (through Pillow)."""
    Image.fromarray(np.ascontiguousarray(img_bgr[..., ::-1])).save(path)
    return path


def write_episode_files(root: str, shots: int,
                        query_sizes: Sequence[Tuple[int, int]],
                        seed: int = 0) -> Tuple[List[str], List[str],
                                                List[str]]:
    """Write K supports (0/255 PNG masks) and queries as PNGs under root."""
    rng = np.random.default_rng(seed)
    support_imgs, support_masks, queries = [], [], []
    for k in range(shots):
        h, w = 40 + 7 * k, 56 - 3 * k
        support_imgs.append(
            write_image(osp.join(root, f'support{k}.png'),
                        make_image(rng, h, w)))
        mask_path = osp.join(root, f'support{k}_mask.png')
        Image.fromarray(make_mask(h, w)).save(mask_path)
        support_masks.append(mask_path)
    for i, (h, w) in enumerate(query_sizes):
        queries.append(
            write_image(osp.join(root, f'query{i}.png'),
                        make_image(rng, h, w)))
    return support_imgs, support_masks, queries


def reference_inputs(query: str, support_imgs: Sequence[str],
                     support_masks: Sequence[str]
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network inputs computed independently of the inferencer.

    Pillow bilinear resize of the RGB images (the reference DCAMA's
    torchvision ``Resize``), normalisation with the config's mean/std,
    nearest resize of the (>= 128) masks.
    """
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)

    def load(path: str) -> torch.Tensor:
        img = Image.open(path).convert('RGB').resize((NET_SIZE, NET_SIZE),
                                                     Image.BILINEAR)
        arr = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        return (arr.float() - mean) / std

    def load_mask(path: str) -> torch.Tensor:
        arr = torch.from_numpy((np.asarray(Image.open(path)) >= 128).astype(
            np.float32))
        return F.interpolate(arr[None, None], (NET_SIZE, NET_SIZE),
                             mode='nearest')[0, 0]

    return (load(query), torch.stack([load(p) for p in support_imgs]),
            torch.stack([load_mask(p) for p in support_masks]))


def to_original(logits: torch.Tensor,
                query: str) -> Tuple[np.ndarray, np.ndarray]:
    """Resize ``[2, h, w]`` logits (on any device) to the query's size;
    argmax, softmax, as numpy arrays."""
    ori_h, ori_w = np.asarray(Image.open(query)).shape[:2]
    logits = F.interpolate(
        logits[None].cpu(), (ori_h, ori_w), mode='bilinear',
        align_corners=True)[0]
    return (logits.argmax(dim=0).numpy().astype(np.uint8),
            logits.softmax(dim=0)[1].numpy())


def assert_masks_match(actual: np.ndarray, desired: np.ndarray,
                       prob: np.ndarray, tie: float = 1e-4) -> None:
    """Masks equal, except where the two classes tie within round-off.

    Results computed along different float paths (another batch size, the
    backbone over more images) differ by ~1e-6, which may flip the argmax of
    a pixel whose foreground probability is 0.5 within that round-off.
    """
    differ = actual != desired
    assert (np.abs(prob[differ] - 0.5) < tie).all(), (
        f'{differ.sum()} pixels differ, not all at ties')
    assert differ.mean() < 1e-3


class LogCapture(logging.Handler):
    """Collects the messages of mmengine's current logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> List[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def log_capture():
    logger = MMLogger.get_current_instance()
    handler = LogCapture()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope='module')
def tiny_model() -> nn.Module:
    return build_tiny_model()


@pytest.fixture(scope='module')
def inferencer(tiny_model) -> FewShotInferencer:
    return FewShotInferencer(tiny_model, device='cpu', img_size=NET_SIZE)


@pytest.fixture(scope='module')
def device_model(tiny_model, device) -> nn.Module:
    """``tiny_model`` on ``device`` (a copy on CUDA: the same weights)."""
    if device.type == 'cpu':
        return tiny_model
    return copy.deepcopy(tiny_model).to(device)


@pytest.fixture(scope='module')
def device_inferencer(device_model, device) -> FewShotInferencer:
    """An inferencer of ``device_model`` on ``device``."""
    return FewShotInferencer(
        device_model, device=str(device), img_size=NET_SIZE)


@pytest.fixture(scope='module')
def episode_dir(tmp_path_factory) -> Tuple[str, list, list, list]:
    root = str(tmp_path_factory.mktemp('episode'))
    sizes = [(37, 53), (48, 96), (71, 41)]
    support_imgs, support_masks, queries = write_episode_files(
        root, shots=5, query_sizes=sizes)
    return root, support_imgs, support_masks, queries


@pytest.mark.parametrize('shots', [1, 5])
def test_masks_equal_predict_logits_argmax_at_original_size(
        device_inferencer, device_model, device, episode_dir, shots):
    inferencer, tiny_model = device_inferencer, device_model
    assert inferencer.device.type == device.type
    _, support_imgs, support_masks, queries = episode_dir
    result = inferencer(
        queries,
        support_imgs=support_imgs[:shots],
        support_masks=support_masks[:shots],
        batch_size=len(queries),
        return_probs=True)
    assert inferencer.num_shots == shots
    preds = result['predictions']
    assert len(preds) == len(queries)
    assert result['img_paths'] == queries
    assert result['failed'] == []

    episodes = [[
        t.to(device)
        for t in reference_inputs(q, support_imgs[:shots],
                                  support_masks[:shots])
    ] for q in queries]
    with torch.no_grad():
        # the same computation: supports encoded once, queries batched
        encoded = tiny_model.encode_supports(episodes[0][1], episodes[0][2])
        batched = tiny_model.predict_logits(
            torch.stack([e[0] for e in episodes]), supports=encoded)
        # one plain episode per query
        plain = [
            tiny_model.predict_logits(q[None], s[None], m[None])[0]
            for q, s, m in episodes
        ]
    fg_fractions = []
    for i, (query, pred) in enumerate(zip(queries, preds)):
        ori_shape = np.asarray(Image.open(query)).shape[:2]
        # non-square and odd-sized queries come back at their own size
        assert pred['sem_seg'].shape == ori_shape
        assert pred['sem_seg'].dtype == np.uint8
        assert pred['fg_prob'].shape == ori_shape
        assert pred['fg_prob'].dtype == np.float32
        exp_mask, exp_prob = to_original(batched[i], query)
        if device.type == 'cpu':
            np.testing.assert_array_equal(pred['sem_seg'], exp_mask)
        else:  # the final resize ran on the GPU there, here on the CPU
            assert_masks_match(pred['sem_seg'], exp_mask, exp_prob)
        np.testing.assert_allclose(
            pred['fg_prob'], exp_prob,
            atol=tolerances(device, 0, 1e-6)['atol'])
        plain_mask, plain_prob = to_original(plain[i], query)
        np.testing.assert_allclose(
            pred['fg_prob'], plain_prob,
            atol=tolerances(device, 0, 1e-5)['atol'])
        assert_masks_match(pred['sem_seg'], plain_mask, plain_prob)
        fg_fractions.append(pred['sem_seg'].mean())
    # the comparison is not trivial: masks hold both classes
    assert 0.05 < np.mean(fg_fractions) < 0.95


def test_reuse_gives_identical_results(device_inferencer, device,
                                       episode_dir):
    inferencer = device_inferencer
    _, support_imgs, support_masks, queries = episode_dir
    inferencer.set_supports(support_imgs[:3], support_masks[:3])
    reused = inferencer(queries, batch_size=4, return_probs=True)
    recomputed = inferencer(
        queries, batch_size=4, return_probs=True, reuse_supports=False)
    one_by_one = inferencer(
        queries, batch_size=1, return_probs=True, reuse_supports=True)
    atol = tolerances(device, 0, 1e-5)['atol']
    for a, b, c in zip(reused['predictions'], recomputed['predictions'],
                       one_by_one['predictions']):
        np.testing.assert_allclose(a['fg_prob'], b['fg_prob'], atol=atol)
        np.testing.assert_allclose(a['fg_prob'], c['fg_prob'], atol=atol)
        assert_masks_match(a['sem_seg'], b['sem_seg'], a['fg_prob'])
        assert_masks_match(a['sem_seg'], c['sem_seg'], a['fg_prob'])


def test_input_kinds_give_the_same_masks(inferencer, episode_dir, tmp_path):
    root, support_imgs, support_masks, queries = episode_dir
    expected = inferencer(
        queries, support_imgs=support_imgs[:2],
        support_masks=support_masks[:2])['predictions']

    # arrays: BGR images, 0/1 uint8 and boolean masks
    bgr = [np.asarray(Image.open(p))[..., ::-1].copy() for p in queries]
    sup_bgr = [
        np.asarray(Image.open(p))[..., ::-1].copy() for p in support_imgs[:2]
    ]
    sup_01 = [(np.asarray(Image.open(p)) > 0).astype(np.uint8)
              for p in support_masks[:2]]
    from_arrays = inferencer(
        bgr, support_imgs=sup_bgr,
        support_masks=[sup_01[0], sup_01[1].astype(bool)])
    assert from_arrays['img_paths'] == [None] * len(queries)
    for got, exp in zip(from_arrays['predictions'], expected):
        np.testing.assert_array_equal(got, exp)
    # the caller's arrays are left unchanged
    np.testing.assert_array_equal(sup_01[0],
                                  (np.asarray(Image.open(support_masks[0])) >
                                   0).astype(np.uint8))

    # a folder: its images sorted by name (supports and masks included)
    folder = tmp_path / 'queries'
    folder.mkdir()
    for i, p in enumerate(queries):
        Image.open(p).save(folder / f'q{i}.png')
    (folder / 'notes.txt').write_text('not an image')
    from_folder = inferencer(str(folder))
    assert from_folder['img_paths'] == [
        str(folder / f'q{i}.png') for i in range(len(queries))
    ]
    for got, exp in zip(from_folder['predictions'], expected):
        np.testing.assert_array_equal(got, exp)

    # a single path gives a single prediction
    single = inferencer(queries[1])
    np.testing.assert_array_equal(single['predictions'], expected[1])

    # data samples (the supports given last were arrays: no paths)
    samples = inferencer(queries[:2], return_datasamples=True)['predictions']
    assert samples[0].support_img_paths == [None, None]
    samples = inferencer(
        queries[:2], support_imgs=support_imgs[:2],
        support_masks=support_masks[:2],
        return_datasamples=True)['predictions']
    assert samples[0].pred_sem_seg.data.shape == (1, 37, 53)
    assert samples[0].seg_logits.data.shape == (2, 37, 53)
    assert samples[0].ori_shape == (37, 53)
    assert samples[0].img_path == queries[0]
    assert samples[0].support_img_paths == support_imgs[:2]
    np.testing.assert_array_equal(
        samples[1].pred_sem_seg.data[0].numpy(), expected[1])
    np.testing.assert_allclose(
        samples[1].fg_prob.data[0].numpy(),
        samples[1].seg_logits.data.softmax(0)[1].numpy(),
        atol=1e-6)


def test_writes_masks_and_overlays_and_refuses_to_overwrite(
        inferencer, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    out = str(tmp_path / 'out')
    result = inferencer(
        queries[:2],
        support_imgs=support_imgs[:2],
        support_masks=support_masks[:2],
        out_dir=out,
        return_vis=True)
    for query, mask, vis in zip(queries[:2], result['predictions'],
                                result['visualization']):
        name = osp.basename(query)  # results: <file name>.png / .jpg
        saved = np.asarray(Image.open(osp.join(out, 'pred', name + '.png')))
        np.testing.assert_array_equal(saved, mask * 255)
        overlay = np.asarray(Image.open(osp.join(out, 'vis', name + '.jpg')))
        h, w = mask.shape
        # the query at full size with the supports in a panel on the right
        assert overlay.shape[0] == h and overlay.shape[1] > w
        assert vis.shape == overlay.shape
        query_bgr = np.asarray(Image.open(query))[..., ::-1]
        fg = mask.astype(bool)
        # the background of the query is untouched, the foreground tinted
        np.testing.assert_array_equal(vis[:, :w][~fg], query_bgr[~fg])
        assert np.abs(vis[:, :w][fg].astype(int) -
                      query_bgr[fg].astype(int)).mean() > 10

    pred_file = osp.join(out, 'pred', 'query0.png.png')
    before = osp.getmtime(pred_file)
    with pytest.raises(FileExistsError, match='query0.png.png'):
        inferencer(queries[:2], out_dir=out)
    assert osp.getmtime(pred_file) == before
    # a new query into the same folder is fine, and force overwrites
    inferencer(queries[2:3], out_dir=out)
    assert osp.isfile(osp.join(out, 'pred', 'query2.png.png'))
    inferencer(queries[:2], out_dir=out, force=True)

    # two queries with the same file name (two folders) are refused before
    # any work, naming both
    twin_dir = tmp_path / 'twin'
    twin_dir.mkdir()
    twin = write_image(
        str(twin_dir / 'query0.png'),
        np.asarray(Image.open(queries[1]))[..., ::-1])
    out2 = str(tmp_path / 'out2')
    with pytest.raises(ValueError,
                       match=r"query0.png' and .*twin/query0.png'.*same file"):
        inferencer([queries[0], twin], out_dir=out2, img_out_dir='')
    assert not osp.exists(out2)


def test_built_from_config_and_checkpoint(tiny_model, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    cfg_file = tmp_path / 'tiny_dcama.py'
    cfg_file.write_text(CONFIG_TEXT)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=tiny_model.state_dict(), meta=dict()), ckpt)
    from_files = FewShotInferencer(
        str(cfg_file), ckpt, device='cpu', img_size=NET_SIZE)
    # the default device (cuda where available) takes the model there: a
    # copy, so that the shared CPU model stays where it is
    in_memory = FewShotInferencer(
        copy.deepcopy(tiny_model), img_size=NET_SIZE)
    default = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert in_memory.device.type == default
    a = from_files(queries[:2], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:1], return_probs=True)
    b = in_memory(queries[:2], support_imgs=support_imgs[:1],
                  support_masks=support_masks[:1], return_probs=True)
    atol = tolerances(in_memory.device, 0, 1e-6)['atol']
    for pa, pb in zip(a['predictions'], b['predictions']):
        if default == 'cpu':
            np.testing.assert_array_equal(pa['sem_seg'], pb['sem_seg'])
        else:  # CPU against CUDA: equal but for ties within round-off
            assert_masks_match(pb['sem_seg'], pa['sem_seg'], pa['fg_prob'])
        np.testing.assert_allclose(pa['fg_prob'], pb['fg_prob'], atol=atol)


def test_network_size_from_config_else_384(tiny_model):
    cfg = Config(
        dict(
            default_scope='mmseg',
            model=TINY_MODEL,
            test_dataloader=dict(
                dataset=dict(pipeline=[
                    dict(type='LoadEpisode'),
                    dict(type='ResizeEpisode', scale=(48, 32)),  # (w, h)
                    dict(type='PackFewShotInputs'),
                ]))))
    assert FewShotInferencer(cfg, device='cpu').img_size == (32, 48)
    # device='cpu': the default (cuda where available) would move the
    # shared model
    assert FewShotInferencer(tiny_model, device='cpu').img_size == (384, 384)
    assert FewShotInferencer(
        tiny_model, device='cpu', img_size=(32, 48)).img_size == (32, 48)
    with pytest.raises(ValueError, match='img_size'):
        FewShotInferencer(tiny_model, device='cpu', img_size=(0, 48))


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------
def test_support_without_mask(inferencer, episode_dir):
    _, support_imgs, support_masks, queries = episode_dir
    with pytest.raises(ValueError, match='support1.png.*no mask'):
        inferencer(queries[0], support_imgs=support_imgs[:2],
                   support_masks=support_masks[:1])
    with pytest.raises(ValueError, match='support1_mask.png.*no support'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:2])
    with pytest.raises(ValueError, match='K >= 1'):
        inferencer(queries[0], support_imgs=[], support_masks=[])
    with pytest.raises(ValueError, match='both support_imgs'):
        inferencer(queries[0], support_imgs=support_imgs[:1])


def test_support_mask_of_another_size(inferencer, episode_dir, tmp_path):
    _, support_imgs, _, queries = episode_dir
    bad_mask = str(tmp_path / 'small_mask.png')
    Image.fromarray(make_mask(20, 20)).save(bad_mask)
    with pytest.raises(ValueError,
                       match=r'small_mask.png.*20x20.*support0.png.*40x56'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=[bad_mask])


def test_unreadable_files(inferencer, episode_dir, tmp_path, log_capture):
    _, support_imgs, support_masks, queries = episode_dir
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'this is not a JPEG')
    with pytest.raises(ValueError, match='broken.jpg'):
        inferencer(queries[0], support_imgs=[str(broken)],
                   support_masks=support_masks[:1])
    with pytest.raises(ValueError, match='broken.jpg'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=[str(broken)])
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(queries[0], support_imgs=[str(tmp_path / 'missing.png')],
                   support_masks=support_masks[:1])

    # a broken query is reported and skipped, the others are processed
    out = str(tmp_path / 'out')
    result = inferencer(
        [queries[0], str(broken), queries[1]],
        support_imgs=support_imgs[:1],
        support_masks=support_masks[:1],
        batch_size=2,
        out_dir=out)
    assert result['failed'] == [str(broken)]
    assert result['predictions'][1] is None
    assert result['predictions'][0].shape == (37, 53)
    assert result['predictions'][2].shape == (48, 96)
    assert any('broken.jpg' in m for m in log_capture.messages(logging.ERROR))
    assert osp.isfile(osp.join(out, 'pred', 'query1.png.png'))
    assert not osp.exists(osp.join(out, 'pred', 'broken.jpg.png'))


def test_bad_queries(inferencer, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    inferencer.set_supports(support_imgs[:1], support_masks[:1])
    empty_dir = tmp_path / 'empty'
    empty_dir.mkdir()
    (empty_dir / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match='empty.*holds no image'):
        inferencer(str(empty_dir))
    with pytest.raises(FileNotFoundError, match='nowhere.jpg'):
        inferencer([queries[0], str(tmp_path / 'nowhere.jpg')])
    with pytest.raises(ValueError, match='uint8'):
        inferencer(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='batch_size'):
        inferencer(queries[0], batch_size=0)


def test_no_support_set(tiny_model, episode_dir):
    fresh = FewShotInferencer(tiny_model, img_size=NET_SIZE)
    with pytest.raises(ValueError, match='No support set'):
        fresh(episode_dir[3][0])


# ----------------------------------------------------------------------
# one episode path: the inferencer computes what tools/test.py computes
# ----------------------------------------------------------------------
@TRANSFORMS.register_module(force=True)
class _InvertQueryForTest(BaseTransform):
    """A test-only step: the query's colours inverted."""

    def transform(self, results: dict) -> dict:
        results = dict(results)
        results['img'] = 255 - results['img']
        return results


def _fss_config(root: str, extra_steps=()) -> Config:
    pipeline = [dict(type='LoadEpisode'), *extra_steps,
                dict(type='ResizeEpisode', scale=(NET_SIZE, NET_SIZE)),
                dict(type='PackFewShotInputs')]
    return Config(
        dict(
            default_scope='mmseg',
            model=TINY_MODEL,
            test_dataloader=dict(
                dataset=dict(
                    type='FSS1000Dataset',
                    data_root=root,
                    split='test',
                    shots=2,
                    pipeline=pipeline))))


@pytest.fixture(scope='module')
def fss_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('fss'))
    make_synthetic_fss1000(
        root, num_classes=(1, 1, 2), images_per_class=4,
        size_range=(50, 90), seed=3)
    return root


@pytest.mark.parametrize('resize_to_original', [False, True])
def test_same_masks_as_the_test_tool_path(tiny_model, fss_root,
                                          resize_to_original, device):
    """An FSS-1000 test episode through the dataset, its pipeline, the
    collate function and ``model.test_step`` (what ``tools/test.py`` runs)
    and through the inferencer given the same files: the same masks, at
    the network size and at the original size."""
    cfg = _fss_config(fss_root)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = copy.deepcopy(tiny_model)
    model.cfg = cfg
    inferencer = FewShotInferencer(model, device=str(device))
    model.test_cfg = dict(resize_to_original=resize_to_original)
    fg = []
    for index in range(4):
        info = dataset.get_episode_info(index)
        with torch.no_grad():
            expected = model.test_step(pseudo_collate([dataset[index]]))[0]
        got = inferencer(
            info['img_path'],
            support_imgs=info['support_img_paths'],
            support_masks=info['support_seg_map_paths'],
            resize_to_original=resize_to_original,
            return_probs=True)['predictions']
        exp_mask = expected.pred_sem_seg.data[0].cpu().numpy().astype(
            np.uint8)
        exp_prob = expected.seg_logits.data.softmax(0)[1].cpu().numpy()
        size = expected.ori_shape if resize_to_original else (NET_SIZE, ) * 2
        assert got['sem_seg'].shape == tuple(size)
        np.testing.assert_allclose(got['fg_prob'], exp_prob,
                                   atol=tolerances(device, 0, 1e-5)['atol'])
        assert_masks_match(got['sem_seg'], exp_mask, exp_prob)
        fg.append(exp_mask.mean())
    assert 0.02 < np.mean(fg) < 0.98  # not a trivial comparison


def test_a_transform_added_to_the_test_pipeline_is_applied(
        tiny_model, fss_root):
    """A step added to test_pipeline changes what the inferencer computes,
    exactly as it changes the evaluated episode."""
    plain_cfg = _fss_config(fss_root)
    inverted_cfg = _fss_config(
        fss_root, extra_steps=[dict(type='_InvertQueryForTest')])
    dataset = DATASETS.build(inverted_cfg.test_dataloader.dataset)
    info = dataset.get_episode_info(1)
    results = {}
    for name, cfg in (('plain', plain_cfg), ('inverted', inverted_cfg)):
        model = copy.deepcopy(tiny_model)
        model.cfg = cfg
        results[name] = FewShotInferencer(model, device='cpu')(
            info['img_path'],
            support_imgs=info['support_img_paths'],
            support_masks=info['support_seg_map_paths'],
            return_probs=True)['predictions']
    assert np.abs(results['plain']['fg_prob'] -
                  results['inverted']['fg_prob']).max() > 1e-3
    # the same as the evaluated episode with that pipeline (the step
    # touches the query only: the support set is unchanged)
    model = copy.deepcopy(tiny_model)
    model.test_cfg = dict(resize_to_original=True)
    with torch.no_grad():
        expected = model.test_step(pseudo_collate([dataset[1]]))[0]
    exp_prob = expected.seg_logits.data.softmax(0)[1].numpy()
    np.testing.assert_allclose(results['inverted']['fg_prob'], exp_prob,
                               atol=1e-5)
