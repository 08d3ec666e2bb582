"""Short variants of the load scenarios (benchmarks/load.py --quick), run by the suite.

The long variants are run by hand (``benchmarks/load.py --json``); these check that the
scenarios still work end to end and that their pass criteria hold at a tenth of the size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", ["smtp_burst", "agent_reads"])
def test_load_scenario_short_variant_passes(scenario: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--quick",
                           "--json", "--scenarios", scenario], capture_output=True, text=True,
                          timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    result = report["scenarios"][0]
    assert result["pass"], json.dumps(result, indent=1)
    if scenario == "smtp_burst":
        assert result["raw_records"] == result["messages"] == result["tickets"]
        assert result["duplicates"] == 0
    else:
        assert result["leaked_financial_values"] == 0
