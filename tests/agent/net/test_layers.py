"""BatchRenorm1d against the formulas of Ioffe (2017), written out here: train mode during and after the
warm-up, eval mode, gradients and running statistics."""

from __future__ import annotations

import pytest
import torch

from looplab.agent.net.layers import BatchRenorm1d

EPS, MOM, R_MAX, D_MAX = 1e-3, 0.1, 1.5, 0.5


def _reference(x, weight, bias, running_mean, running_var, renorm: bool):
    """y = weight * ((x - mu) / sigma * r + d) + bias, r and d constants; new running statistics."""
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    sigma = (var + EPS).sqrt()
    if renorm:
        running_sigma = (running_var + EPS).sqrt()
        r = (sigma / running_sigma).clamp(1 / R_MAX, R_MAX).detach()
        d = ((mu - running_mean) / running_sigma).clamp(-D_MAX, D_MAX).detach()
    else:
        r, d = 1.0, 0.0
    y = (weight * ((x - mu) / sigma * r + d) + bias).view(shape)
    return y, running_mean + MOM * (mu.detach() - running_mean), running_var + MOM * (var.detach() - running_var)


def _layer(warmup: int) -> BatchRenorm1d:
    layer = BatchRenorm1d(4, momentum=MOM, eps=EPS, r_max=R_MAX, d_max=D_MAX, warmup_steps=warmup)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, -0.5, 0.3]))
        layer.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.2]))
        layer.running_mean.copy_(torch.tensor([0.0, 3.0, -1.0, 0.5]))
        layer.running_var.copy_(torch.tensor([1.0, 0.2, 9.0, 4.0]))  # far from the batch: r and d clip
    return layer


@pytest.mark.parametrize("renorm", [False, True])
@pytest.mark.parametrize("rank", [2, 3])
def test_train_mode_matches_the_formula_with_its_gradients(renorm, rank):
    torch.manual_seed(0)
    layer = _layer(warmup=0 if renorm else 10)
    shape = (16, 4) if rank == 2 else (16, 3, 4)  # rank 3: features last, statistics over the rest
    x = (torch.randn(*shape) * torch.tensor([1.0, 0.5, 4.0, 2.0]) + torch.tensor([0.3, 2.0, 1.0, -1.0]))
    x.requires_grad_(True)
    grad_out = torch.randn(*shape)
    ref_x = x.detach().clone().requires_grad_(True)
    w, b = layer.weight.detach().clone().requires_grad_(True), layer.bias.detach().clone().requires_grad_(True)
    want, want_mean, want_var = _reference(ref_x, w, b, layer.running_mean.clone(), layer.running_var.clone(), renorm)
    want.backward(grad_out)

    got = layer(x)
    got.backward(grad_out)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(x.grad, ref_x.grad, atol=1e-5)
    assert torch.allclose(layer.weight.grad, w.grad, atol=1e-4)
    assert torch.allclose(layer.bias.grad, b.grad, atol=1e-5)
    assert torch.allclose(layer.running_mean, want_mean, atol=1e-6)
    assert torch.allclose(layer.running_var, want_var, atol=1e-5)
    assert int(layer.num_batches_tracked) == 1


def test_renorm_starts_after_the_warm_up_and_eval_uses_running_statistics():
    torch.manual_seed(1)
    layer = _layer(warmup=1)
    x = torch.randn(16, 4) * 3 + 2
    first = layer(x)  # warm-up batch: plain batch norm, whatever the running statistics
    assert torch.allclose(first, _reference(x, layer.weight, layer.bias, layer.running_mean, layer.running_var,
                                            False)[0], atol=1e-5)
    rm, rv = layer.running_mean.clone(), layer.running_var.clone()
    second = layer(x)  # the same batch now gets r and d
    assert not torch.allclose(first, second, atol=1e-3)
    assert torch.allclose(second, _reference(x, layer.weight, layer.bias, rm, rv, True)[0], atol=1e-5)
    layer.eval()
    with torch.no_grad():
        y = layer(x)
    want = layer.weight * (x - layer.running_mean) / (layer.running_var + EPS).sqrt() + layer.bias
    assert torch.allclose(y, want, atol=1e-5)
    assert int(layer.num_batches_tracked) == 2  # eval does not count
