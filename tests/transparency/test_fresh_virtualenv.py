"""The done-when: an untouched export verifies in a fresh virtualenv that has only the verifier's
own dependencies (cryptography, orjson and rfc8785), with a copy of the transparency_log directory alone."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import transparency_log

from .exports import sample_events, write_full_export

PACKAGE = Path(transparency_log.__file__).parent
VERIFIER_DEPENDENCIES = ("cryptography", "orjson", "rfc8785")
_NO_INDEX_SIGNS = (
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "No matching distribution found",
)


def test_the_package_imports_only_the_standard_library_and_its_dependencies():
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in VERIFIER_DEPENDENCIES, f"{module.name} imports {name}"


def _run(command, **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **options)


def test_an_export_verifies_in_a_fresh_virtualenv_with_only_the_verifier_dependencies(tmp_path, signer):
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)])
    assert created.returncode == 0, created.stderr
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    installed = _run([*pip, "install", "--timeout", "20", "--retries", "1", *VERIFIER_DEPENDENCIES])
    if installed.returncode != 0:
        if any(sign in installed.stderr for sign in _NO_INDEX_SIGNS):
            pytest.skip(f"pip cannot reach a package index: {installed.stderr.strip().splitlines()[-1]}")
        pytest.fail(f"pip install failed:\n{installed.stderr}")
    frozen = _run([*pip, "freeze", "--all"]).stdout
    distributions = sorted(line.split("==")[0].lower() for line in frozen.splitlines())
    assert set(distributions) <= {*VERIFIER_DEPENDENCIES, "cffi", "pycparser", "pip", "setuptools"}, distributions

    auditor = tmp_path / "auditor"
    shutil.copytree(PACKAGE, auditor / "transparency_log", ignore=shutil.ignore_patterns("__pycache__"))
    export = tmp_path / "audit.jsonl"
    write_full_export(export, signer, sample_events(30))
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}

    def verify() -> subprocess.CompletedProcess:
        command = [python, "-s", "-m", "transparency_log", "verify", str(export), "--key", signer.verifier_key]
        return _run(command, cwd=auditor, env=environment)

    intact = verify()
    assert (intact.returncode, intact.stderr) == (0, ""), intact.stderr
    assert intact.stdout.startswith("intact: 30 events, tree size 30, root ")

    data = bytearray(export.read_bytes())
    data[data.index(b"user-5") + 2] ^= 0x01
    export.write_bytes(bytes(data))
    broken = verify()
    assert (broken.returncode, broken.stdout) == (1, ""), broken.stderr
    assert broken.stderr.startswith("broken: line 6 (position 25): its content differs"), broken.stderr
