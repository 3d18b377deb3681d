"""ConvNet and DuelingConvNet: shapes, SLM Lab conv layer lists, normalize, batch norm placement."""

from __future__ import annotations

import pytest
import torch

from looplab.agent.net.conv import ConvNet, ConvNetConfig, DuelingConvNet, conv_body
from looplab.spec.schema import validate_model


def test_nature_convnet_shapes_and_tails():
    cfg = ConvNetConfig(type="ConvNet", conv_hid_layers=[[32, 8, 4, 0, 1], [64, 4, 2, 0, 1], [64, 3, 1, 0, 1]],
                        fc_hid_layers=[512], init_fn="orthogonal_")
    net = ConvNet(cfg, (4, 84, 84), [6, 1])
    pi, v = net(torch.zeros(5, 4, 84, 84))
    assert pi.shape == (5, 6) and v.shape == (5, 1)
    assert net.body[0].in_features == 64 * 7 * 7  # 84 -> 20 -> 9 -> 7
    # batch norm after every conv layer but the first (SLM Lab's default)
    bns = [m for m in net.conv if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 2 and not isinstance(net.conv[1], torch.nn.BatchNorm2d)


def test_short_layer_lists_default_stride_padding_dilation():
    body, feat = conv_body((1, 10, 10), [[2, 3]], "relu", batch_norm=False)
    conv = body[0]
    assert (conv.stride, conv.padding, conv.dilation) == ((1, 1), (0, 0), (1, 1))
    assert feat == 2 * 8 * 8


def test_normalize_divides_pixels_by_255():
    cfg = ConvNetConfig(type="ConvNet", conv_hid_layers=[[2, 3, 1]], fc_hid_layers=[4], normalize=True,
                        batch_norm=False)
    torch.manual_seed(0)
    net = ConvNet(cfg, (1, 6, 6), [2])
    raw = torch.full((1, 1, 6, 6), 255.0)
    cfg_plain = cfg.model_copy(update={"normalize": False})
    plain = ConvNet(cfg_plain, (1, 6, 6), [2])
    plain.load_state_dict(net.state_dict())
    assert torch.allclose(net(raw), plain(raw / 255.0))


def test_dueling_conv_net_centres_advantages():
    cfg = ConvNetConfig(type="DuelingConvNet", conv_hid_layers=[[4, 3, 2]], fc_hid_layers=[8], batch_norm=False)
    net = DuelingConvNet(cfg, (2, 12, 12), [5])
    x = torch.rand(3, 2, 12, 12)
    q = net(x)
    h = net.body(net.conv(x))
    assert q.shape == (3, 5)
    assert torch.allclose(q.mean(-1, keepdim=True), net.v(h), atol=1e-5)  # mean over actions of Q is V


def test_bad_layer_spec_is_a_spec_error():
    from looplab.errors import SpecError

    with pytest.raises(SpecError, match="conv_hid_layers"):
        validate_model(ConvNetConfig, {"type": "ConvNet", "conv_hid_layers": [[32]]}, "agent.net")
