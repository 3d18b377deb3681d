"""Action distributions (`action_pdtype`) and action policies (`action_policy`).

Continuous nets output [loc, log_scale] (or loc alone with a state-independent `log_std_init`);
log-probs and entropies are summed over action dimensions. Actions are drawn with `sample(pd, generator)`
and every policy draws from the generator it is given (the session's `act` stream, `agent/rng.py`), never
from torch's global generator. Distributions are built without argument checks (`validate_args=False`):
they are pure overhead in the acting and training loops, whose nets stay finite (the training guard skips
non-finite updates).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch.distributions.utils import clamp_probs

from looplab.registry import Registry

# allowed pdtypes per action type; the first is `default`
PDTYPES: dict[str, list[str]] = {
    "discrete": ["Categorical", "Argmax", "GumbelSoftmax"],
    "continuous": ["Normal", "Beta", "Gumbel", "LogNormal", "NormalTanh"],
    "multi_continuous": ["Normal", "MultivariateNormal", "Beta", "Gumbel", "LogNormal", "NormalTanh"],
    "multi_discrete": ["MultiCategorical"],
    "multi_binary": ["Bernoulli"],
}
# action distributions, keyed by `action_pdtype`: f(out, log_std, nvec) -> distribution
DISTRIBUTIONS = Registry("action_pdtype", "agent.algorithm.action_pdtype")
# action policies, keyed by `action_policy`: f(out, pd_fn, explore_var, num_actions, generator) -> actions
POLICIES = Registry("action_policy", "agent.algorithm.action_policy")
LOG_SCALE_MIN, LOG_SCALE_MAX = -5.0, 2.0


def resolve_pdtype(pdtype: str, action_type: str) -> str:
    allowed = PDTYPES[action_type]
    if pdtype == "default":
        return allowed[0]
    if pdtype not in allowed:
        raise ValueError(f"action_pdtype '{pdtype}' does not fit a {action_type} action space; use one of {allowed}")
    return pdtype


class Categorical(D.Categorical):
    """torch's Categorical whose log-prob of one action per batch row skips the broadcast of the actions
    against the logits: the same values bit for bit (a test), in the losses of every discrete policy."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value.shape != self.logits.shape[:-1]:  # a sample shape to broadcast: torch's general path
            return super().log_prob(value)
        return self.logits.gather(-1, value.long().unsqueeze(-1)).squeeze(-1)


class Argmax(Categorical):
    """A deterministic 'distribution' that always picks the largest logit."""

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return self.logits.argmax(dim=-1)


class GumbelSoftmax(D.RelaxedOneHotCategorical):
    """Hard Gumbel-softmax samples as action indices; log_prob/entropy of the underlying categorical."""

    def __init__(self, logits: torch.Tensor, temperature: float = 1.0):
        super().__init__(torch.tensor(temperature, device=logits.device), logits=logits, validate_args=False)
        self._cat = Categorical(logits=logits, validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape).argmax(dim=-1)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        soft = super().rsample(sample_shape)
        hard = torch.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft)
        return hard - soft.detach() + soft  # straight-through

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self._cat.log_prob(value)

    def entropy(self) -> torch.Tensor:
        return self._cat.entropy()


class MultiCategorical(D.Distribution):
    """Independent categoricals, one per MultiDiscrete dimension."""

    arg_constraints: dict = {}

    def __init__(self, logits: torch.Tensor, nvec: list[int]):
        self.cats = [Categorical(logits=lg, validate_args=False) for lg in torch.split(logits, nvec, dim=-1)]
        super().__init__(batch_shape=logits.shape[:-1], validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return torch.stack([c.sample(sample_shape) for c in self.cats], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(c.log_prob(value[..., i]) for i, c in enumerate(self.cats))

    def entropy(self) -> torch.Tensor:
        return sum(c.entropy() for c in self.cats)


class MultiBernoulli(D.Independent):
    """Independent Bernoullis over a MultiBinary action: integer samples, log-probs of integer actions."""

    def __init__(self, logits: torch.Tensor):
        super().__init__(D.Bernoulli(logits=logits, validate_args=False), 1, validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape).long()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.float())


class SymmetricBeta(D.Independent):
    """Beta(a, b) mapped from (0, 1) onto the env's action range (-1, 1), so that the whole range is reachable."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        super().__init__(D.Beta(a, b, validate_args=False), 1, validate_args=False)
        self._log2 = a.shape[-1] * math.log(2.0)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape) * 2.0 - 1.0

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        # actions at the clipped bounds would have -inf density
        x = ((value + 1.0) / 2.0).clamp(1e-6, 1.0 - 1e-6)
        return super().log_prob(x) - self._log2

    def entropy(self) -> torch.Tensor:
        return super().entropy() + self._log2

    @property
    def mean(self) -> torch.Tensor:
        return super().mean * 2.0 - 1.0


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """sum over action dims of log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
    (Haarnoja et al. 2018, appendix C)."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


class NormalTanh(D.Independent):
    """A tanh-squashed Normal (Brax's policy) whose samples are the pre-tanh values u; the env gets tanh(u).

    Keeping u (the memory stores it) spares the unstable atanh of actions near the bounds. log_prob(u) is
    the density of a = tanh(u): log N(u) - sum log(1 - tanh(u)^2); the entropy of a is that of u plus
    E[sum log(1 - tanh(u)^2)], estimated from one sample as Brax does. The greedy action is tanh(loc).
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__(D.Normal(loc, scale, validate_args=False), 1, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value) - tanh_log_det(value)

    def entropy(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """The estimate from one reparameterized sample, drawn from `generator` (None: torch's global one)."""
        base = self.base_dist
        u = base.loc + base.scale * torch.randn(base.loc.shape, generator=generator, dtype=base.loc.dtype,
                                                device=base.loc.device)
        return super().entropy() + tanh_log_det(u)


def out_dim(pdtype: str, action_dim: int, nvec: list[int] | None = None, learned_std: bool = False) -> int:
    """Size of the policy head for a pdtype."""
    if pdtype in PDTYPES["discrete"]:
        return action_dim
    if pdtype == "MultiCategorical":
        return int(sum(nvec or []))
    if pdtype == "Bernoulli":
        return action_dim
    return action_dim if learned_std else 2 * action_dim


def make_pd(pdtype: str, out: torch.Tensor, log_std: torch.Tensor | None = None,
            nvec: list[int] | None = None) -> D.Distribution:
    """The action distribution for a policy-head output `out` of shape [B, out_dim]."""
    return DISTRIBUTIONS.get(pdtype)(out, log_std, nvec)


def _loc_log_scale(out: torch.Tensor, log_std: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A continuous head's [loc, log_scale], or loc alone with a state-independent `log_std`."""
    return (out, log_std.expand_as(out)) if log_std is not None else out.chunk(2, dim=-1)


def _loc_scale(out: torch.Tensor, log_std: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    loc, log_scale = _loc_log_scale(out, log_std)
    return loc, log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp()


@DISTRIBUTIONS.register("Categorical")
def _categorical(out: torch.Tensor, log_std: Any, nvec: Any) -> D.Distribution:
    return Categorical(logits=out, validate_args=False)


@DISTRIBUTIONS.register("Argmax")
def _argmax(out: torch.Tensor, log_std: Any, nvec: Any) -> D.Distribution:
    return Argmax(logits=out, validate_args=False)


@DISTRIBUTIONS.register("GumbelSoftmax")
def _gumbel_softmax(out: torch.Tensor, log_std: Any, nvec: Any) -> D.Distribution:
    return GumbelSoftmax(logits=out)


@DISTRIBUTIONS.register("MultiCategorical")
def _multi_categorical(out: torch.Tensor, log_std: Any, nvec: list[int] | None) -> D.Distribution:
    return MultiCategorical(out, nvec or [])


@DISTRIBUTIONS.register("Bernoulli")
def _bernoulli(out: torch.Tensor, log_std: Any, nvec: Any) -> D.Distribution:
    return MultiBernoulli(out)


@DISTRIBUTIONS.register("Normal")
def _normal(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    return D.Independent(D.Normal(*_loc_scale(out, log_std), validate_args=False), 1, validate_args=False)


@DISTRIBUTIONS.register("NormalTanh")
def _normal_tanh(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    return NormalTanh(*_loc_scale(out, log_std))


@DISTRIBUTIONS.register("MultivariateNormal")
def _multivariate_normal(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    loc, scale = _loc_scale(out, log_std)
    return D.MultivariateNormal(loc, scale_tril=torch.diag_embed(scale), validate_args=False)


@DISTRIBUTIONS.register("Beta")
def _beta(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    loc, log_scale = _loc_log_scale(out, log_std)
    # softplus(+1) keeps both concentrations above 1 (unimodal)
    return SymmetricBeta(F.softplus(loc) + 1.0, F.softplus(log_scale) + 1.0)


@DISTRIBUTIONS.register("Gumbel")
def _gumbel(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    return D.Independent(D.Gumbel(*_loc_scale(out, log_std), validate_args=False), 1, validate_args=False)


@DISTRIBUTIONS.register("LogNormal")
def _log_normal(out: torch.Tensor, log_std: torch.Tensor | None, nvec: Any) -> D.Distribution:
    return D.Independent(D.LogNormal(*_loc_scale(out, log_std), validate_args=False), 1, validate_args=False)


# ---- drawing with an explicit generator -----------------------------------------------------------
def _standard_normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def _gumbel_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise, -log(-log(u)) of u ~ U(0, 1) clamped off 0 and 1 as torch's distributions do."""
    u = clamp_probs(torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device))
    return -torch.log(-torch.log(u))


@torch.no_grad()
def sample_logits(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A draw of Categorical(logits=logits) from `generator`, without building the distribution (the acting
    path of every discrete policy: one softmax and one multinomial)."""
    probs = torch.softmax(logits.reshape(-1, logits.shape[-1]), -1)
    return torch.multinomial(probs, 1, generator=generator).view(logits.shape[:-1])


@torch.no_grad()
def sample(pd: D.Distribution, generator: torch.Generator) -> torch.Tensor:
    """What `pd.sample()` returns (NormalTanh: the pre-tanh value), drawn from `generator` instead of torch's
    global generator. A new distribution needs its case here."""
    if isinstance(pd, MultiCategorical):
        return torch.stack([sample(c, generator) for c in pd.cats], dim=-1)
    if isinstance(pd, Argmax):
        return pd.logits.argmax(-1)
    if isinstance(pd, GumbelSoftmax):  # the argmax of a relaxed sample: Gumbel-max over the logits
        return (pd.logits + _gumbel_noise(pd.logits, generator)).argmax(-1)
    if isinstance(pd, D.Categorical):
        return sample_logits(pd.logits, generator)
    if isinstance(pd, MultiBernoulli):
        return torch.bernoulli(pd.base_dist.probs, generator=generator).long()
    if isinstance(pd, SymmetricBeta):  # Beta(a, b) is the first coordinate of Dirichlet(a, b), as torch draws it
        beta = pd.base_dist
        concentration = torch.stack([beta.concentration1, beta.concentration0], -1)
        return torch._sample_dirichlet(concentration, generator=generator)[..., 0] * 2.0 - 1.0
    if isinstance(pd, D.MultivariateNormal):
        return pd.loc + (pd.scale_tril @ _standard_normal(pd.loc, generator).unsqueeze(-1)).squeeze(-1)
    base = pd.base_dist if isinstance(pd, D.Independent) else pd
    if isinstance(base, D.Normal):  # Normal, NormalTanh
        return base.loc + base.scale * _standard_normal(base.loc, generator)
    if isinstance(base, D.Gumbel):
        return base.loc + base.scale * _gumbel_noise(base.loc, generator)
    if isinstance(base, D.LogNormal):
        return (base.loc + base.scale * _standard_normal(base.loc, generator)).exp()
    raise TypeError(f"no way to sample a {type(pd).__name__} with a generator")


def entropy(pd: D.Distribution, generator: torch.Generator) -> torch.Tensor:
    """The entropy of `pd`; NormalTanh's one-sample estimate draws its sample from `generator`."""
    return pd.entropy(generator) if isinstance(pd, NormalTanh) else pd.entropy()


# ---- action policies (`action_policy`) ---------------------------------------------------------
def epsilon_greedy(q: torch.Tensor, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """argmax of `q` [B, A], replaced by a uniform random action with probability epsilon, one coin per env."""
    greedy = q.argmax(dim=-1)
    if epsilon <= 0.0:
        return greedy
    coin = torch.rand(q.shape[0], generator=generator, device=q.device) < epsilon
    rand = torch.randint(0, q.shape[-1], (q.shape[0],), generator=generator, device=q.device)
    return torch.where(coin, rand, greedy)


def boltzmann(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """A sample of softmax(logits / tau): tau -> 0 is greedy, large tau is uniform."""
    return sample_logits(logits / max(tau, 1e-8), generator)


def random_action(shape: tuple[int, ...], num_actions: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform random discrete actions, on the generator's device."""
    return torch.randint(0, num_actions, shape, generator=generator, device=generator.device)


@POLICIES.register("default")
def _sample(out: torch.Tensor, pd_fn: Any, explore_var: float, num_actions: int,
            generator: torch.Generator) -> torch.Tensor:
    return sample(pd_fn(out), generator)


@POLICIES.register("random")
def _random(out: torch.Tensor, pd_fn: Any, explore_var: float, num_actions: int,
            generator: torch.Generator) -> torch.Tensor:
    return random_action(out.shape[:1], num_actions, generator)


@POLICIES.register("epsilon_greedy")
def _epsilon_greedy(out: torch.Tensor, pd_fn: Any, explore_var: float, num_actions: int,
                    generator: torch.Generator) -> torch.Tensor:
    return epsilon_greedy(out, explore_var, generator)


@POLICIES.register("boltzmann")
def _boltzmann(out: torch.Tensor, pd_fn: Any, explore_var: float, num_actions: int,
               generator: torch.Generator) -> torch.Tensor:
    return boltzmann(out, explore_var, generator)


def select_action(policy: str, pd_fn: Any, out: torch.Tensor, explore_var: float, num_actions: int,
                  generator: torch.Generator) -> torch.Tensor:
    """An action from policy-head output `out` under an `action_policy` (discrete: any; else `default`),
    drawn from `generator`."""
    return POLICIES.get(policy)(out, pd_fn, explore_var, num_actions, generator)


def greedy(pd: D.Distribution) -> torch.Tensor:
    """The most likely action: argmax for discrete, the mean/mode for continuous."""
    base = pd.base_dist if isinstance(pd, D.Independent) else pd
    if isinstance(base, D.Categorical):
        return base.logits.argmax(-1)
    if hasattr(pd, "cats"):
        return torch.stack([c.logits.argmax(-1) for c in pd.cats], -1)
    if isinstance(base, D.Bernoulli):
        return (base.probs > 0.5).long()
    if isinstance(base, D.Normal):
        return base.loc
    return pd.mean
