from __future__ import annotations

import pytest

from transparency_log.note import Signer, generate_signer

LOG_NAME = "audit.example/entitlements"


@pytest.fixture
def signer() -> Signer:
    """The log's signer key."""
    return Signer.from_text(generate_signer(LOG_NAME))
