"""Bad input: every malformed spec in tests/data/bad_specs/ is one SpecError naming file, spec and key path.

Most cases are checked in process through `prepare` (what `looplab run` calls before writing
anything); a handful go through the CLI: exit 2, one stderr line, no traceback, no run folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from looplab.errors import LoopLabError, SpecError
from looplab.experiment.run import prepare
from tests.conftest import TEST_SPECS, run_cli

BAD = TEST_SPECS / "bad_specs"
# file -> (key path, a prefix where it ends in *, or None for file-level errors; fragment of the message)
CASES: dict[str, tuple[str | None, str]] = {
    "syntax_error.json": (None, "invalid JSON at line 1 column 18"),
    "syntax_error.yaml": (None, "invalid YAML at line 3"),
    "yaml_tab_indent.yaml": (None, "invalid YAML at line 2"),
    "yaml_python_tag.yaml": (None, "could not determine a constructor"),
    "empty.json": (None, "file is empty"),
    "empty.yaml": (None, "file is empty"),
    "top_level_list.json": (None, "top level must map spec names to specs, got a list"),
    "top_level_scalar.yaml": (None, "got a str"),
    "spec_not_mapping.json": (None, "a spec must be a mapping, got a list"),
    "not_utf8.json": (None, "not a UTF-8 text file"),
    "deeply_nested.json": ("a.a.a*", "nested deeper than 64 levels"),
    "very_deeply_nested.json": (None, "nested too deeply to parse"),
    "unknown_top_key.json": ("agnet", "unknown key (did you mean 'agent'?)"),
    "unknown_agent_key.json": ("agent.memroy", "did you mean 'memory'?"),
    "unknown_algorithm_key.json": ("agent.algorithm.gamm", "did you mean 'gamma'?"),
    "unknown_net_key.json": ("agent.net.hid_layer", "did you mean 'hid_layers'?"),
    "unknown_memory_key.json": ("agent.memory.sise", "unknown key"),
    "unknown_env_key_meta.json": ("meta.log_frequncy", "did you mean 'log_frequency'?"),
    "unknown_schedule_key.json": ("agent.algorithm.clip_eps_spec.start_value", "did you mean 'start_val'?"),
    "yaml_unknown_key.yaml": ("env", "unexpected keyword argument 'max_fram'"),
    "bad_gym_kwarg.json": ("env", "unexpected keyword argument 'not_a_kwarg'"),
    "wrong_type_gamma.json": ("agent.algorithm.gamma", "valid number (got str 'high')"),
    "wrong_type_hid_layers.json": ("agent.net.hid_layers", "valid list"),
    "wrong_type_num_envs.json": ("env.num_envs", "valid integer"),
    "wrong_type_agent.json": ("agent", "valid dictionary"),
    "fractional_frames.json": ("env.max_frame", "whole number, got 100.5"),
    "bool_sessions.json": ("meta.max_session", "not a boolean"),
    "missing_env.json": ("env", "required key is missing"),
    "missing_meta.json": ("meta", "required key is missing"),
    "missing_max_frame.json": ("env.max_frame", "required key is missing"),
    "missing_algorithm.json": ("agent.algorithm", "required key is missing"),
    "missing_time_horizon.json": ("agent.algorithm.time_horizon", "required key is missing"),
    "missing_env_name.json": ("env.name", "required key is missing"),
    "negative_frames.json": ("env.max_frame", "greater than 0"),
    "zero_frames.json": ("env.max_frame", "greater than 0"),
    "zero_sessions.json": ("meta.max_session", "greater than 0"),
    "negative_sessions.json": ("meta.max_session", "greater than 0"),
    "gamma_out_of_range.json": ("agent.algorithm.gamma", "less than or equal to 1"),
    "unknown_algorithm.json": ("agent.algorithm.name", "unknown algorithm 'PPOO' (did you mean 'PPO'?)"),
    "unknown_net.json": ("agent.net.type", "did you mean 'MLPNet'?"),
    "unknown_memory.json": ("agent.memory.name", "unknown memory 'OnPolicyBatchReplayy' (did you mean 'OnPolicyBatchReplay'?)"),
    "unknown_pdtype.json": ("agent.algorithm.action_pdtype", "unknown action_pdtype 'Gaussian'"),
    "unknown_policy.json": ("agent.algorithm.action_policy", "unknown action_policy 'greedyish'"),
    "unknown_schedule.json": ("agent.algorithm.clip_eps_spec.name", "did you mean 'linear_decay'?"),
    "unknown_optimizer.json": ("agent.net.optim_spec", "did you mean 'Adam'?"),
    "unknown_loss.json": ("agent.net.loss_spec", "did you mean 'MSELoss'?"),
    "unknown_lr_scheduler.json": ("agent.net.lr_scheduler_spec", "did you mean 'StepLR'?"),
    "unknown_activation.json": ("agent.net.hid_layers_activation", "did you mean 'relu'?"),
    "bad_optimizer_arg.json": ("agent.net.optim_spec", "bad arguments for Adam"),
    "ppo_without_onpolicy_memory.json": ("agent.memory.name", "PPO needs memory OnPolicyBatchReplay"),
    "dqn_on_continuous.json": ("agent.algorithm.name", "DQN cannot act in a continuous action space"),
    "convnet_on_vector_obs.json": ("agent.net.type", "ConvNet needs (C, H, W) image states"),
    "unknown_env_id.json": ("env.name", "unknown Gymnasium env id 'CartPole-v99'"),
    "distributed_true.json": ("meta.distributed", "must be false, 'shared' or 'synced', got True"),
    "distributed_random.json": ("meta.distributed", "Random has no nets to train, so Hogwild cannot share any"),
    "schedule_steps_reversed.json": ("agent.algorithm.clip_eps_spec", "end_step must not be before start_step"),
    "unfilled_placeholder.json": ("env.name", "unfilled placeholder ${env}: give it with -s env=VALUE"),
    "fractional_replace_frequency.json": ("agent.net.update_frequency", "whole number, got 0.9"),
    "polyak_coef_out_of_range.json": ("agent.net.polyak_coef", "must be in [0, 1]"),
    "net_without_type.json": ("agent.net.type", "required key is missing"),
    "zero_width_layer.json": ("agent.net.hid_layers.1", "greater than 0"),
    "negative_width_layer.json": ("agent.net.hid_layers.0", "greater than 0"),
    "infinite_lr.json": ("agent.net.optim_spec.lr", "must be a finite number, got inf"),
    "nan_gamma.yaml": ("agent.algorithm.gamma", "must be a finite number, got nan"),
    "negative_seed.json": ("meta.random_seed", "greater than or equal to 0"),
    "negative_clip_eps.json": ("agent.algorithm.clip_eps_spec", "the clip range must be >= 0"),
    "zero_max_t.json": ("env.max_t", "greater than 0"),
    "negative_clip_grad.json": ("agent.net.clip_grad_val", "must be greater than 0 (or null: no clipping), got -1.0"),
    "wrong_type_rigorous_eval.json": ("meta.rigorous_eval", "must be a whole number, got 'yes'"),
    "too_many_envs.json": ("env.num_envs", "1000000 is more than the 65536 envs per session"),
    "too_many_sessions.json": ("meta.max_session", "1000000 is more than the 1024 sessions per trial"),
    "v4_agent_list.json": ("agent", "a list of agents is SLM Lab v4's multi-agent format"),
    "trailing_comma.json": (None, "line 22 column 4: Expecting property name enclosed in double quotes (a trailing comma"),
    "dup_key.yaml": (None, "invalid YAML at line 15 column 7: key 'hid_layers_activation' appears twice in one mapping"),
    "dup_key.json": (None, "invalid JSON: key 'gamma' appears twice in one object"),
    "reversed_clip_reward.json": ("env.clip_reward", "give [low, high] with low < high"),
    "zero_reward_scale.json": ("env.reward_scale", "it must be greater than 0, got 0"),
    "negative_clip_obs.json": ("env.clip_obs", "v must be greater than 0, got -1.0"),
    "boltzmann_zero_temperature.json": ("agent.algorithm.explore_var_spec",
                                        "boltzmann's temperature must be greater than 0, got start_val 5.0 and end_val 0.0"),
    "batch_larger_than_replay.json": ("agent.memory", "batch_size (20000) is larger than the replay itself (max_size 10000)"),
    "sac_alpha_bounds_reversed.json": ("agent.algorithm", "log_alpha_min (5.0) must be below log_alpha_max (2.0)"),
}


def test_the_corpus_is_complete():
    files = {p.name for p in BAD.iterdir()} - {"traversal.json"}
    assert files == set(CASES) and len(files) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_bad_spec_is_one_located_error(name):
    path, fragment = CASES[name]
    with pytest.raises(SpecError) as err:
        prepare(str(BAD / name), "s", None, None)
    e = err.value
    msg = str(e)
    if path is None:
        assert e.path is None
    elif path.endswith("*"):
        assert e.path is not None and e.path.startswith(path[:-1])
    else:
        assert e.path == path
    assert fragment in msg
    assert msg.startswith(f"{BAD / name}: spec 's'")
    assert "\n" not in msg


def test_unknown_spec_name_lists_the_available_ones():
    with pytest.raises(SpecError, match=r"no spec named 'okk' \(did you mean 'ok'\?\); available: \.\./\.\./etc, ok"):
        prepare(str(BAD / "traversal.json"), "okk", None, None)


def test_a_spec_name_cannot_escape_the_data_folder():
    with pytest.raises(SpecError, match="spec name must be letters"):
        prepare(str(BAD / "traversal.json"), "../../etc", None, None)


@pytest.mark.parametrize("sets, fragment", [
    (["env.max_frame"], "bad --set 'env.max_frame'"),
    (["../x=1"], "bad --set"),
    (["env.name.x=1"], "'env.name' is not a mapping"),
    (["env.max_frame=-1"], "greater than 0"),
])
def test_bad_set_values(sets, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        prepare(str(TEST_SPECS / "bad_specs" / "traversal.json"), "ok", None, sets)


def test_bad_s_variable():
    with pytest.raises(SpecError, match="bad -s '1x=2'"):
        prepare(str(BAD / "unfilled_placeholder.json"), "s", ["1x=2"], None)


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"s": "' + "x" * (9 * 1024 * 1024) + '"}')
    with pytest.raises(SpecError, match="larger than 8 MiB"):
        prepare(str(big), "s", None, None)


@pytest.mark.parametrize("args", [
    ("unknown_algorithm.json", "s"),
    ("traversal.json", "../../etc"),
    ("missing_env.json", "s", "-s", "no_equals_sign"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(args, data_dir: Path):
    proc = run_cli("run", str(BAD / args[0]), *args[1:], data_dir=data_dir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("looplab: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(data_dir.iterdir())


def test_an_agent_too_large_to_build_is_refused_before_its_run_folder(data_dir: Path):
    """Two 1e7-wide layers (400 TB of weights): the memory check builds the agent first and says why it cannot."""
    proc = run_cli("run", str(TEST_SPECS / "unbuildable_net.json"), "s", "train", data_dir=data_dir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent.net: the agent cannot be built" in lines[0], proc.stderr
    assert "allocate" in lines[0] and "Traceback" not in proc.stderr
    assert not any(data_dir.iterdir())


def test_a_missing_spec_file_is_a_clear_error():
    with pytest.raises(LoopLabError, match="spec file not found"):
        prepare(str(BAD / "nope.json"), "s", None, None)


def test_a_yaml_merge_may_override_the_keys_it_brings_in(tmp_path):
    """Only a mapping's own keys count as duplicates: `<<: *net` then `hid_layers` overrides, as SLM Lab's files do."""
    text = (BAD / "dup_key.yaml").read_text().replace("      hid_layers_activation: relu\n", "")
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    _, spec, _ = prepare(str(path), "s", None, None)
    assert spec.net.hid_layers == [32] and spec.net.hid_layers_activation == "tanh"
    assert spec.net.optim_spec.lr == 0.001  # from the anchor
