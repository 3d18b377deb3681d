"""Whole-spec validation: the schema's sections, then each component's own config model, then the env.

It sits at the agent layer because it needs the component registries (algorithms, memories, nets) and
the env (to check the id and to probe the spaces the components must fit).
"""

from __future__ import annotations

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.memory import MEMORIES
from looplab.agent.net import NETS
from looplab.env.make import check_env_id, probe_env
from looplab.errors import SpecError
from looplab.spec.schema import Spec, spec_warning, validate_model, warn_numeric_strings


def validate_spec(raw: dict, file: str | None = None, spec_name: str | None = None, check_env: bool = True) -> Spec:
    """Validate a loaded spec dict into a `Spec` with typed component configs."""
    spec_name = spec_name or raw.get("name")
    warn_numeric_strings(raw, file, spec_name)
    try:
        raw = dict(raw)
        raw.setdefault("name", spec_name)
        for key in ("agent", "env", "meta"):
            if key not in raw:
                raise SpecError("required key is missing", path=key)
        for key in ("agent", "env"):
            if isinstance(raw[key], list) and raw[key] and all(isinstance(x, dict) for x in raw[key]):
                raise SpecError(f"a list of {key}s is SLM Lab v4's multi-agent format; LoopLab reads v5 specs: give "
                                f"one {key} as a mapping (and drop v4's `body`)", path=key)
        spec = validate_model(Spec, raw, context={"check_env_id": check_env_id})
        agent = spec.agent
        algo_cls = ALGORITHMS.get(agent.algorithm.get("name"))
        spec.algorithm = validate_model(algo_cls.Config, agent.algorithm, "agent.algorithm")
        mem_cls = MEMORIES.get(agent.memory.get("name"))
        spec.memory = validate_model(mem_cls.Config, agent.memory, "agent.memory")
        if agent.net is not None and not (agent.net == {} and not algo_cls.needs_net):  # Random's `net: {}`
            if "type" not in agent.net:
                raise SpecError("required key is missing", path="agent.net.type")
            net_cls = NETS.get(agent.net.get("type"))
            spec.net = validate_model(net_cls.Config, agent.net, "agent.net")
            if spec.net.update_type == "polyak" and spec.net.polyak_coef == 0.0:
                spec_warning(file, spec_name, "agent.net.polyak_coef",
                             "0 (or absent, SLM Lab's default): the target net keeps its initial weights")
        if agent.critic_net is not None:
            crit_cls = NETS.get(agent.critic_net.get("type"), path="agent.critic_net.type")
            spec.critic_net = validate_model(crit_cls.Config, agent.critic_net, "agent.critic_net")
        if check_env:
            info = probe_env(spec)
            algo_cls.check_spec(spec, info)
            for key, cfg in (("net", spec.net), ("critic_net", spec.critic_net)):
                if cfg is not None and "conv_hid_layers" in type(cfg).model_fields and len(info.state_shape) != 3:
                    raise SpecError(f"{cfg.type} needs (C, H, W) image states; {info.name} gives shape "
                                    f"{info.state_shape}", path=f"agent.{key}.type")
    except SpecError as e:
        raise e.located(file, spec_name) from None
    return spec
