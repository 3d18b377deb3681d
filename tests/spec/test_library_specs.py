"""LoopLab's own library specs (looplab/spec/library/*.json): each validates, at every value of its search
space too; the discrete SAC one runs through the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from looplab.agent.validate import validate_spec
from looplab.spec.search import check_search
from tests.conftest import ROOT, run_cli

LIBRARY = ROOT / "looplab" / "spec" / "library"
SPECS = [(f.name, name) for f in sorted(LIBRARY.glob("*.json")) for name in json.loads(f.read_text())]


def test_the_library_is_found():
    assert ("sac_lunar.json", "sac_lunar") in SPECS and len(SPECS) >= 10


@pytest.mark.parametrize("file, name", SPECS)
def test_library_spec_validates_at_every_search_value(file, name):
    raw = json.loads((LIBRARY / file).read_text())[name]
    spec = validate_spec(raw, file, spec_name=name)
    assert spec.env.max_frame > 0
    if "search" in raw:
        assert check_search(raw, validate_spec, file, name).keys


def test_sac_lunar_runs_with_its_entropy_anneal(data_dir):
    proc = run_cli("run", str(LIBRARY / "sac_lunar.json"), "sac_lunar", "dev", "--set", "env.max_frame=1600",
                   "--set", "agent.algorithm.training_start_step=800", "--set", "meta.log_frequency=400", "--quiet",
                   data_dir=data_dir, check=True)
    assert proc.returncode == 0
    df = pd.read_csv(next(data_dir.glob("sac_lunar_*/info/*_session_df_train.csv")))
    trained = df[df["frame"] > 800]
    assert len(trained) and trained["loss"].notna().all() and (trained["alpha"] > 0).all()
