"""``entitlements audit export`` of the whole log, made in this process or by worker processes."""

from __future__ import annotations

from entitlements.audit import export_log
from entitlements.cli import DEMO_TENANT
from entitlements.tenant import load_tenant
from projections import log_tree
from transparency_log.export import HASHES_SUFFIX, verify_export
from transparency_log.note import Signer, generate_signer


def test_an_export_made_by_worker_processes_is_byte_for_byte_the_one_made_in_process(open_services, tmp_path, monkeypatch):
    services = open_services(audit_key_file=str(tmp_path / "audit.key"))
    load_tenant(services.app, DEMO_TENANT)
    monkeypatch.setattr(log_tree, "READ_CHUNK", 7)  # chunks that do not line up with the tree's subtrees
    signer = Signer.from_text(generate_signer("example.test/audit"))
    here = export_log(services.log_tree, signer, tmp_path / "here.jsonl", workers=0)
    workers = export_log(services.log_tree, signer, tmp_path / "workers.jsonl", workers=2)
    assert here.events == workers.events == services.read_models.audit_log.head() > 7 * 4
    assert (here.tree_size, here.root) == (workers.tree_size, workers.root)
    for suffix in ("", HASHES_SUFFIX):
        assert (tmp_path / f"here.jsonl{suffix}").read_bytes() == (tmp_path / f"workers.jsonl{suffix}").read_bytes()
    assert verify_export(str(tmp_path / "workers.jsonl"), signer.verifier_key).intact
