"""Spec loading: JSON and YAML (anchors, merge keys, anchor holders), substitution, overrides."""

import json

import pytest

from looplab.agent.validate import validate_spec
from looplab.errors import SpecError
from looplab.spec import load_spec, parse_set, parse_vars
from tests.conftest import SLM_SPECS

YAML = """
_meta: &meta
  distributed: false
  log_frequency: 500
  max_session: 2
  max_trial: 1
_algo: &algo
  name: PPO
  gamma: 0.99
  lam: 0.95
  clip_eps_spec: {name: no_decay, start_val: 0.2, end_val: 0.2, start_step: 0, end_step: 0}
  time_horizon: 32
  minibatch_size: 16
  training_epoch: 2
ppo_a:
  agent:
    name: PPO
    algorithm:
      <<: *algo
      gamma: 0.9
    memory: {name: OnPolicyBatchReplay}
    net: {type: MLPNet, hid_layers: [16], optim_spec: {name: Adam, lr: 0.001}}
  env: {name: "${env}", max_frame: "${max_frame}", num_envs: 2}
  meta: *meta
"""


@pytest.fixture
def yaml_file(tmp_path):
    p = tmp_path / "specs.yaml"
    p.write_text(YAML)
    return p


def test_yaml_anchors_merge_and_substitution(yaml_file):
    raw, _ = load_spec(str(yaml_file), "ppo_a", {"env": "CartPole-v1", "max_frame": "4e3"})
    assert raw["agent"]["algorithm"]["gamma"] == 0.9  # merge key overridden locally
    assert raw["agent"]["algorithm"]["lam"] == 0.95  # from the anchor
    assert raw["env"]["max_frame"] == 4000  # quoted numeric placeholder became a number
    assert raw["meta"]["max_session"] == 2
    assert raw["name"] == "ppo_a_cartpole"  # SLM Lab's env suffix
    spec = validate_spec(raw, str(yaml_file), "ppo_a")
    assert spec.env.max_frame == 4000 and spec.algorithm.gamma == 0.9


def test_anchor_holders_are_not_specs(yaml_file):
    with pytest.raises(SpecError) as e:
        load_spec(str(yaml_file), "_meta", {"env": "CartPole-v1", "max_frame": "1"})
    assert "available: ppo_a" in str(e.value)


def test_unfilled_placeholder_names_the_key(yaml_file):
    with pytest.raises(SpecError) as e:
        load_spec(str(yaml_file), "ppo_a", {"env": "CartPole-v1"})
    assert e.value.path == "env.max_frame" and "${max_frame}" in str(e.value)


def test_set_overrides_parse_json_values(yaml_file):
    sets = parse_set(["env.max_frame=1000", "agent.net.hid_layers=[8,8]", "agent.name=hello",
                      "meta.tensorboard=false"])
    raw, _ = load_spec(str(yaml_file), "ppo_a", {"env": "CartPole-v1", "max_frame": "5"}, sets)
    assert raw["env"]["max_frame"] == 1000
    assert raw["agent"]["net"]["hid_layers"] == [8, 8]
    assert raw["agent"]["name"] == "hello"
    assert raw["meta"]["tensorboard"] is False


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "a b=1"])
def test_bad_set(bad):
    with pytest.raises(SpecError):
        parse_set([bad])


def test_bad_var():
    with pytest.raises(SpecError):
        parse_vars(["1x=2"])


def test_slm_lab_ppo_cartpole_unchanged():
    raw, file = load_spec(str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json"), "ppo_cartpole")
    spec = validate_spec(raw, file, "ppo_cartpole")
    assert spec.algorithm.clip_vloss is False  # SLM Lab spells it clip_val_loss
    assert spec.algorithm.time_horizon == 256 and spec.env.num_envs == 4
    assert spec.net.for_role("critic").optim_spec.model_extra["lr"] == 0.0006352


def test_use_same_optim_gives_critic_the_actor_optimizer():
    raw, file = load_spec(str(SLM_SPECS / "demo.json"), "ppo_cartpole")
    raw["agent"]["net"]["actor_optim_spec"] = {"name": "Adam", "lr": 0.5}
    spec = validate_spec(raw, file, "ppo_cartpole")
    assert spec.net.for_role("critic").optim_spec.model_extra["lr"] == 0.5


def _spec(tmp_path, mutate):
    raw = json.loads((SLM_SPECS / "demo.json").read_text())
    mutate(raw["ppo_cartpole"])
    p = tmp_path / "s.json"
    p.write_text(json.dumps(raw))
    return str(p)


def _err(tmp_path, mutate) -> SpecError:
    f = _spec(tmp_path, mutate)
    with pytest.raises(SpecError) as e:
        raw, file = load_spec(f, "ppo_cartpole")
        validate_spec(raw, file, "ppo_cartpole")
    return e.value


def test_unknown_key_did_you_mean(tmp_path):
    e = _err(tmp_path, lambda s: s["agent"]["algorithm"].update(gamm=0.9))
    assert e.path == "agent.algorithm.gamm" and "did you mean 'gamma'" in str(e)
    assert str(e).startswith(str(tmp_path)) and "spec 'ppo_cartpole'" in str(e)


def test_wrong_type(tmp_path):
    e = _err(tmp_path, lambda s: s["agent"]["algorithm"].update(time_horizon="long"))
    assert e.path == "agent.algorithm.time_horizon"


def test_missing_required(tmp_path):
    e = _err(tmp_path, lambda s: s["agent"]["algorithm"].pop("time_horizon"))
    assert e.path == "agent.algorithm.time_horizon" and "missing" in str(e)


@pytest.mark.parametrize("mutate,path", [
    (lambda s: s["env"].update(max_frame=-5), "env.max_frame"),
    (lambda s: s["meta"].update(max_session=0), "meta.max_session"),
    (lambda s: s["env"].update(name="CartPole-v9"), "env.name"),
    (lambda s: s["agent"]["algorithm"].update(name="PPOO"), "agent.algorithm.name"),
    (lambda s: s["agent"]["net"].update(type="MLPNett"), "agent.net.type"),
    (lambda s: s["agent"]["memory"].update(name="Nope"), "agent.memory.name"),
    (lambda s: s["agent"]["net"]["optim_spec"].update(name="Adamm"), "agent.net.optim_spec"),
    (lambda s: s["agent"]["algorithm"]["clip_eps_spec"].update(name="cosine"), "agent.algorithm.clip_eps_spec.name"),
])
def test_impossible_or_unknown_values(tmp_path, mutate, path):
    e = _err(tmp_path, mutate)
    assert e.path == path, str(e)
    assert "\n" not in str(e)


def test_unknown_spec_name_lists_available():
    with pytest.raises(SpecError) as e:
        load_spec(str(SLM_SPECS / "demo.json"), "ppo_cartpol")
    assert "did you mean 'ppo_cartpole'" in str(e.value) and "available: ppo_cartpole" in str(e.value)
