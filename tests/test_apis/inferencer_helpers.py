"""Shared helpers of the inferencer tests: a tiny random DCAMA (its config
and a model whose decision boundary lies mid-image), small images and masks
written on the fly, and reference computations independent of the
inferencer."""
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import dcama_mm  # noqa: F401  (registers the modules)
from mmseg.registry import MODELS

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


def write_tiny_model_files(root: str) -> Tuple[nn.Module, str, str]:
    """:func:`build_tiny_model`, its config file and its checkpoint, both
    written under ``root``."""
    model = build_tiny_model()
    cfg_file = osp.join(root, 'tiny_dcama.py')
    with open(cfg_file, 'w') as f:
        f.write(CONFIG_TEXT)
    ckpt = osp.join(root, 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return model, cfg_file, ckpt


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
