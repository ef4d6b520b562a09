"""``entitlements audit``: key, checkpoint, export (whole log or one request) and verify, from the
command line, with the exit statuses API.md gives (0 intact, 1 broken, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entitlements.cli import DEMO_TENANT, main


@pytest.fixture
def demo(database, capsys):
    assert main(["load", str(DEMO_TENANT), "--quiet"]) == 0
    capsys.readouterr()
    return database


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def submitted_request(database) -> str:
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    services = build_services(Settings(database_url=database))
    try:
        receipt = services.app.submit_request(
            requestor_id="ben", access_package_id="sales-reports", justification="Q3", answers={"cost-center": "CC100"}
        )
        return receipt.id
    finally:
        services.close()


def test_an_untouched_export_verifies_and_one_changed_byte_is_named_by_its_line(demo, capsys, tmp_path):
    status, out, _ = run(capsys, "audit", "export", "--output", "log.jsonl")
    assert status == 0 and "wrote 33 event(s) to log.jsonl" in out
    assert (tmp_path / "log.jsonl.checkpoint").read_text().startswith("127.0.0.1:8000/audit\n33\n")
    assert run(capsys, "audit", "verify", "log.jsonl")[0] == 0
    lines = (tmp_path / "log.jsonl").read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b"Contoso", b"Contosa", 1)
    (tmp_path / "log.jsonl").write_bytes(b"\n".join(lines))
    status, _, err = run(capsys, "audit", "verify", "log.jsonl")
    assert status == 1 and "line 7" in err


def test_a_request_export_carries_inclusion_proofs_that_verify_with_the_verifier_alone(demo, capsys, tmp_path):
    request_id = submitted_request(demo)
    status, out, _ = run(capsys, "audit", "export", "--request", request_id, "--output", "trail.jsonl")
    assert status == 0, out
    lines = [json.loads(line) for line in (tmp_path / "trail.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "AccessRequest.Submitted" and lines[0]["originator_id"] == request_id
    assert all(line["inclusion_proof"]["tree_size"] > 33 for line in lines)
    key = run(capsys, "audit", "key")[1].strip()
    alone = subprocess.run(
        [sys.executable, "-m", "transparency_log", "verify", "trail.jsonl", "--key", key],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.startswith(f"intact: {len(lines)} events")


def test_a_request_export_since_an_older_checkpoint_proves_the_log_only_grew(demo, capsys, tmp_path):
    assert run(capsys, "audit", "checkpoint")[0] == 0
    (tmp_path / "old.checkpoint").write_text(run(capsys, "audit", "checkpoint")[1])
    request_id = submitted_request(demo)
    status, out, err = run(capsys, "audit", "export", "--request", request_id, "--output", "t.jsonl", "--since", "old.checkpoint")
    assert status == 0, err
    assert (tmp_path / "t.jsonl.consistency").exists()
    status, out, err = run(capsys, "audit", "verify", "t.jsonl", "--since", "old.checkpoint")
    assert status == 0, err
    assert "33" in out


def test_a_whole_export_verifies_since_an_older_export_of_the_same_log(demo, capsys, tmp_path):
    assert run(capsys, "audit", "export", "--output", "old.jsonl")[0] == 0
    submitted_request(demo)
    assert run(capsys, "audit", "export", "--output", "new.jsonl")[0] == 0
    status, out, err = run(capsys, "audit", "verify", "new.jsonl", "--since", "old.jsonl.checkpoint")
    assert status == 0, err


def test_the_live_database_verifies_and_a_changed_event_is_named(demo, capsys, tmp_path):
    assert run(capsys, "audit", "checkpoint")[0] == 0
    status, out, _ = run(capsys, "audit", "verify")
    assert status == 0 and out.startswith("intact: 33 events, 1 signed checkpoint(s)")
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as connection:
        connection.execute("UPDATE stored_events SET state = replace(state, 'Contoso', 'Contosa') WHERE rowid = 7")
    status, _, err = run(capsys, "audit", "verify")
    assert status == 1 and "event at position 7" in err and "changed" in err


def test_exporting_an_unknown_request_fails_with_a_message(demo, capsys):
    status, _, err = run(capsys, "audit", "export", "--request", "5d0e7f4c-0000-4000-8000-000000000000")
    assert status == 1 and "no request 5d0e7f4c" in err and "Traceback" not in err


def test_verify_of_a_missing_file_is_a_usage_error(demo, capsys):
    status, _, err = run(capsys, "audit", "verify", "missing.jsonl")
    assert status == 2 and "missing.jsonl" in err
