"""Spec files: loading (JSON/YAML, ${var} substitution, --set overrides) and the strict schema."""

from looplab.spec.load import load_spec, parse_set, parse_vars
from looplab.spec.schema import Spec, validate_spec

__all__ = ["Spec", "load_spec", "parse_set", "parse_vars", "validate_spec"]
