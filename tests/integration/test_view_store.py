"""The view store's bulk writes on PostgreSQL: ``copy_rows`` writes rows with one COPY, or writes
none of them and says so, for the caller to insert them another way."""

from __future__ import annotations

import pytest

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from tests.conftest import fresh_database


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """COPY is PostgreSQL's."""
    yield from fresh_database(request, tmp_path)


@pytest.fixture
def store(database_url):
    services = build_services(Settings(database_url=database_url))
    with services.store.transaction() as tx:
        tx.execute("CREATE TABLE copied (place INTEGER PRIMARY KEY, text TEXT)")
        tx.execute("INSERT INTO copied VALUES (1, 'there')")
    yield services.store
    services.close()


def rows(store) -> list[tuple]:
    with store.transaction(write=False) as tx:
        return tx.fetchall("SELECT place, text FROM copied ORDER BY place")


def test_copy_rows_writes_all_the_rows_in_one_copy(store):
    with store.transaction() as tx:
        assert tx.copy_rows("copied", ("place", "text"), [(2, "a"), (3, None), (4, "tab\tand\nline")])
    assert rows(store) == [(1, "there"), (2, "a"), (3, None), (4, "tab\tand\nline")]


@pytest.mark.parametrize("refused", [[(2, "a"), (1, "again")], [(2, "a"), (3, "nul\x00")]], ids=["a key there", "a NUL"])
def test_copy_rows_writes_none_and_says_so_when_one_row_is_refused_and_the_transaction_goes_on(store, refused):
    with store.transaction() as tx:
        assert not tx.copy_rows("copied", ("place", "text"), refused)
        tx.execute("INSERT INTO copied VALUES (5, 'after')")
    assert rows(store) == [(1, "there"), (5, "after")]
