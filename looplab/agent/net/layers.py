"""Extra layers usable in `arc` specs (registered in torch.nn, as torcharc looks layers up there).

BatchRenorm1d (Ioffe 2017, as used by CrossQ) and a weight-normalized Linear (Salimans & Kingma 2016),
each with a Lazy variant that infers `in_features`/`num_features` on the first forward.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter


class BatchRenorm1d(nn.Module):
    """Batch renormalization: batch statistics corrected towards running ones by clipped r and d.

    For the first `warmup_steps` training batches r = 1 and d = 0 (plain batch norm).
    """

    def __init__(self, num_features: int, momentum: float = 0.01, eps: float = 1e-3, r_max: float = 3.0,
                 d_max: float = 5.0, warmup_steps: int = 100_000):
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.r_max, self.d_max, self.warmup_steps = r_max, d_max, warmup_steps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:  # features last; statistics over every leading dimension
            return self.forward(x.reshape(-1, x.shape[-1])).view(x.shape)
        if not self.training:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False,
                                            0.0, self.eps)
        # one native batch-norm kernel each way (forward and backward), instead of a chain of elementwise ops;
        # it also returns the batch mean and 1/std it normalized with
        renorm = int(self.num_batches_tracked) >= self.warmup_steps
        w, b = (None, None) if renorm else (self.weight, self.bias)
        y, mean, invstd = torch.native_batch_norm(x, w, b, None, None, True, 0.0, self.eps)
        with torch.no_grad():
            var = invstd.pow(-2).sub_(self.eps)
            if renorm:
                r, d = self._correction(mean, var)
        if renorm:  # weight * (x_hat * r + d) + bias, r and d constants
            y = torch.addcmul(self.bias + self.weight * d, y, self.weight * r)
        self._track(mean, var)
        return y

    def _correction(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, d): the batch statistics' clipped correction towards the running ones."""
        running_std = (self.running_var + self.eps).sqrt()
        r = ((var + self.eps).sqrt() / running_std).clamp(1 / self.r_max, self.r_max)
        d = ((mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max)
        return r, d

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        self.running_mean.lerp_(mean, self.momentum)
        self.running_var.lerp_(var, self.momentum)
        self.num_batches_tracked += 1


class LazyBatchRenorm1d(LazyModuleMixin, BatchRenorm1d):
    cls_to_become = BatchRenorm1d

    def __init__(self, momentum: float = 0.01, eps: float = 1e-3, r_max: float = 3.0, d_max: float = 5.0,
                 warmup_steps: int = 100_000):
        super().__init__(0, momentum, eps, r_max, d_max, warmup_steps)
        self.weight = UninitializedParameter()
        self.bias = UninitializedParameter()
        self.running_mean = UninitializedBuffer()
        self.running_var = UninitializedBuffer()

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            n = x.shape[-1]
            self.num_features = n
            with torch.no_grad():
                for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
                    t = getattr(self, name)
                    t.materialize((n,), device=x.device, dtype=x.dtype)
                    t.fill_(fill)


class WeightNormLinear(nn.Module):
    """Linear with weight = g * v / ||v|| (per output unit)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        lin = nn.Linear(max(in_features, 1), out_features, bias=bias)
        self.weight_v = nn.Parameter(lin.weight.detach().clone())
        self.weight_g = nn.Parameter(lin.weight.detach().norm(dim=1, keepdim=True))
        self.bias = nn.Parameter(lin.bias.detach().clone()) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return nn.functional.linear(x, w, self.bias)


class LazyWeightNormLinear(LazyModuleMixin, WeightNormLinear):
    cls_to_become = WeightNormLinear

    def __init__(self, out_features: int, bias: bool = True):
        super().__init__(0, out_features, bias)
        self.weight_v = UninitializedParameter()
        self.weight_g = UninitializedParameter()

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            self.in_features = x.shape[-1]
            lin = nn.Linear(self.in_features, self.out_features, device=x.device)
            with torch.no_grad():
                self.weight_v.materialize(lin.weight.shape, device=x.device)
                self.weight_v.copy_(lin.weight)
                self.weight_g.materialize((self.out_features, 1), device=x.device)
                self.weight_g.copy_(lin.weight.norm(dim=1, keepdim=True))
                if self.bias is not None:
                    self.bias.copy_(lin.bias)


LAYERS = (BatchRenorm1d, LazyBatchRenorm1d, WeightNormLinear, LazyWeightNormLinear)


def register_layers() -> None:
    """Make the layers resolvable as torch.nn.<name> (how torcharc finds modules); idempotent."""
    for cls in LAYERS:
        if getattr(nn, cls.__name__, None) is not cls:
            setattr(nn, cls.__name__, cls)


register_layers()
