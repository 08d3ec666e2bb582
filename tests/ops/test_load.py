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
                           "--json", "--scenarios", scenario], check=False,
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    result = report["scenarios"][0]
    # What must hold whatever the machine's load; the latency thresholds in ``pass`` are
    # for the long run by hand on an idle machine (speed is measured, not asserted here).
    assert result["errors"] == 0, json.dumps(result, indent=1)
    assert isinstance(result["memory"], dict)
    if scenario == "smtp_burst":
        assert result["accepted"] == result["messages"]
        assert result["raw_records"] == result["messages"] == result["tickets"]
        assert result["duplicates"] == 0
        assert (result["memory"].get("rss_mb_max") or 0) < 512, result["memory"]
    else:
        assert result["requests"] > 0 and result["latency"], result
        assert result["leaked_financial_values"] == 0


def run_quick(scenario: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--quick",
                           "--json", "--scenarios", scenario], check=False, text=True,
                          capture_output=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)["scenarios"][0]
    for key in ("memory",):
        assert key in result, result
    return result


# The scenarios below share two cores with the generator (and, here, with other test runs):
# their short variants assert what must hold whatever the load (nothing lost, nothing
# doubled, forgeries refused, no server error, no leak of descriptors) and report the
# latency percentiles, whose thresholds are the long run's ``pass`` on an idle machine.

def test_webhook_burst_short_variant_stores_each_sms_once_and_refuses_forgeries() -> None:
    result = run_quick("webhook_burst")
    assert result["stored_messages"] == result["new_messages"], result
    assert result["duplicates"] == 0
    assert result["server_errors"] == 0 and result["errors"] == 0, result
    codes = result["status_codes"]
    assert isinstance(codes, dict)
    assert set(codes["forged"]) <= {"403"} and set(codes["redelivered"]) <= {"200"}, codes
    assert isinstance(result["latency"], dict) and result["latency"]["p99_ms"] > 0
    # Delivery status callbacks for the product's own SMS replies, shuffled and repeated
    # (and forged "failed" ones, refused above): every reply ends delivered, never went back.
    callbacks = result["status_callbacks"]
    assert isinstance(callbacks, dict)
    assert set(codes["status"]) == {"200"}, codes
    assert sum(codes["status"].values()) == callbacks["callbacks"] > 0, callbacks
    assert callbacks["replies_with_backward_callbacks"] >= 1, callbacks
    assert callbacks["forged_failed_callbacks"] >= 1, callbacks
    assert callbacks["sent_to_twilio"] == callbacks["outbound_sms_stored"] == callbacks["replies"]
    assert callbacks["final_status"] == {"delivered": callbacks["replies"]}, callbacks
    assert callbacks["regressions"] == callbacks["failed"] == 0, callbacks
    assert callbacks["without_delivered_at"] == 0 and callbacks["monotonic"] is True, callbacks
    assert "not_covered" not in result


def test_chat_concurrency_short_variant_delivers_every_message_once() -> None:
    result = run_quick("chat_concurrency")
    assert result["chats"] == result["visitors"], result
    assert result["lost"] == 0 and not result["failed_sends"], result
    assert isinstance(result["latency"], dict) and result["latency"]["p95_ms"], result


def test_mixed_soak_short_variant_has_no_errors_and_no_leaks() -> None:
    result = run_quick("mixed_soak")
    assert result["errors"] == 0, result
    fds = result["open_fds"]
    assert isinstance(fds, dict) and fds["end"] - fds["start"] < 40, fds
    streams = result["streams"]
    assert isinstance(streams, dict) and all(s["sent"] > 0 for s in streams.values()), streams
