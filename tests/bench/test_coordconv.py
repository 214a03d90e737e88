"""bench/coordconv.py: the CoordConv decoder starts as the paper's and can draw by place."""

from __future__ import annotations

import torch
from torch import nn

from bench.coordconv import CoordConv2d, with_coordconv
from train.model import DCIGN, ModelConfig


def _model() -> DCIGN:
    torch.manual_seed(0)
    return DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=4, enc_channels=(4, 4, 4),
                             dec_channels=(4, 4, 4), norm="group"))


def test_it_starts_as_the_same_function() -> None:
    plain, coord = _model(), with_coordconv(_model())
    convs = [m for m in coord.decoder.body if isinstance(m, CoordConv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in plain.decoder.body) == 4
    z = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(coord.decode_logits(z), plain.decode_logits(z))


def test_the_coordinate_maps_let_a_conv_draw_by_place() -> None:
    conv = CoordConv2d(nn.Conv2d(1, 1, 1))
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.bias.zero_()
        conv.conv.weight[0, 1] = 1.0  # the row map alone
    out = conv(torch.zeros(2, 1, 5, 7))
    assert out.shape == (2, 1, 5, 7)
    torch.testing.assert_close(out[0, 0, :, 3], torch.linspace(-1, 1, 5))
    torch.testing.assert_close(out[1, 0, 2], torch.zeros(7))  # the middle row is 0
