"""Spec files: loading (JSON/YAML, ${var} substitution, --set overrides) and the strict schema
(whole-spec validation, which needs the components and the env, is `looplab.agent.validate`)."""

from looplab.spec.load import load_spec, parse_set, parse_vars
from looplab.spec.schema import Spec

__all__ = ["Spec", "load_spec", "parse_set", "parse_vars"]
