"""The catalog read model: the configured catalogs, access packages and policies, for the list of
packages a user may request (``GET /access-packages``, the portal's list and request form).

Who may request under a policy is decided by the domain's own rules, asked of the configured items
rebuilt from the settings kept here (``ConfigurationItem.as_configured``): a catalog's
``check_open_to`` and a policy's ``allows_requestor``, with the requestor's group membership as the
application sees it now (``is_in_group``). Nothing here restates a rule.

Why it stays fast with thousands of packages: the answer depends on the user, so it cannot be
kept per user, and filtering a page in Python would read every package the user may not request
before it fills the page. Instead the rules are asked once per *distinct* set of requestor
settings (``AssignmentPolicy.REQUESTOR_SETTINGS``: policies alike in them admit the same users;
a tenant has a handful, kept in ``catalog_requestor_terms``) and once per catalog, and the page is
then one query of the database: packages in name order, not hidden, in an open catalog, with a
policy whose terms were admitted (the database, not Python, passes over the packages the user may
not request). What a page costs beyond that: the rule checks, one group look-up of the application
per group the terms name (at most), and a ``search``, a substring match over the packages' names
and descriptions that no index serves. Measured here, 5,000 packages and 25 requestor groups: a
page of 50 in about 10 ms on SQLite, 50 ms on PostgreSQL (most of it the 25 group look-ups).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from domain.access_package import AccessPackage
from domain.assignment_policy import AssignmentPolicy
from domain.catalog import Catalog
from projections.engine import LogEvent, ReadModel, topics
from projections.paging import MAX_LIMIT, Page, decode_cursor, encode_cursor
from projections.store import Transaction, dumps, loads

NAME = "catalog"
CATALOGS = "catalog_catalogs"
PACKAGES = "catalog_packages"
PACKAGE_POLICIES = "catalog_package_policies"  # a package's policies, in its order
POLICIES = "catalog_policies"
TERMS = "catalog_requestor_terms"  # each distinct REQUESTOR_SETTINGS of the policies, once

KINDS = {"Catalog": CATALOGS, "AccessPackage": PACKAGES, "AssignmentPolicy": POLICIES}
SEARCH_SEPARATOR = "\n"  # between the name and the description in ``search_text``


@dataclass(frozen=True)
class Requestor:
    """Who asks, as the domain sees them now."""

    user_id: str
    is_external: bool
    is_in_group: Callable[[str], bool]  # the group ids they are in (remembered for one answer)


def _terms_key(terms: str) -> str:
    return hashlib.sha256(terms.encode("utf-8")).hexdigest()[:32]


def package_row(key: str, settings: dict) -> tuple:
    """(catalog_id, hidden, name_key, search_text, data) of a package as configured."""
    package = AccessPackage.as_configured(key, settings)
    description = package.description
    data = {"id": key, "name": package.name, "description": description, "catalog_id": package.catalog_id}
    search_text = (package.name + SEARCH_SEPARATOR + (description or "")).casefold()
    return package.catalog_id, int(package.hidden), package.name.casefold(), search_text, dumps(data)


def policy_item(policy: AssignmentPolicy) -> dict[str, Any]:
    """What a request form needs of a policy."""
    return {
        "id": policy.key,
        "name": policy.name,
        "description": policy.description,
        "questions": [
            {
                "id": question["id"],
                "text": question.get("text", ""),
                "required": bool(question.get("required", False)),
                "choices": list(question.get("choices") or []),
            }
            for question in policy.questions
        ],
        "requestor_justification_required": policy.requestor_justification_required,
        "approval_required": policy.approval_required,
        "expiration": dict(policy.expiration),
    }


class CatalogReadModel(ReadModel):
    name = NAME
    topics = (
        topics("catalog", "Catalog.Registered", "Catalog.Reconfigured")
        + topics("access_package", "AccessPackage.Registered", "AccessPackage.Reconfigured")
        + topics("assignment_policy", "AssignmentPolicy.Registered", "AssignmentPolicy.Reconfigured")
    )
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {CATALOGS} (
            originator_id TEXT PRIMARY KEY,
            catalog_id TEXT NOT NULL UNIQUE,
            settings TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {PACKAGES} (
            originator_id TEXT PRIMARY KEY,
            package_id TEXT NOT NULL UNIQUE,
            catalog_id TEXT NOT NULL,
            hidden INTEGER NOT NULL,
            name_key TEXT NOT NULL,
            search_text TEXT NOT NULL,
            data TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS catalog_packages_by_name ON {PACKAGES} (hidden, name_key, package_id)",
        f"""CREATE TABLE IF NOT EXISTS {PACKAGE_POLICIES} (
            package_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            policy_id TEXT NOT NULL,
            PRIMARY KEY (package_id, position))""",
        f"""CREATE TABLE IF NOT EXISTS {POLICIES} (
            originator_id TEXT PRIMARY KEY,
            policy_id TEXT NOT NULL UNIQUE,
            access_package_id TEXT,
            terms_key TEXT NOT NULL,
            terms TEXT NOT NULL,
            data TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS catalog_policies_by_terms ON {POLICIES} (terms_key)",
        f"""CREATE TABLE IF NOT EXISTS {TERMS} (
            terms_key TEXT PRIMARY KEY,
            terms TEXT NOT NULL)""",
    )

    # --- projecting --------------------------------------------------------------------------

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        configured: dict[str, dict[str, tuple[str, dict]]] = {table: {} for table in KINDS.values()}
        unnamed: dict[str, set[str]] = {table: set() for table in KINDS.values()}
        for event in events:
            table = KINDS[event.kind.partition(".")[0]]
            if not event.data.get("key"):
                unnamed[table].add(event.originator_id)
        known: dict[str, str] = {}
        for table, key_column in ((CATALOGS, "catalog_id"), (PACKAGES, "package_id"), (POLICIES, "policy_id")):
            known.update(tx.fetch_where_in(f"SELECT originator_id, {key_column} FROM {table}", "originator_id", unnamed[table]))
        for event in events:
            key = event.data.get("key") or known.get(event.originator_id)
            if key is None:
                continue
            known[event.originator_id] = key
            configured[KINDS[event.kind.partition(".")[0]]][event.originator_id] = (key, event.data.get("settings") or {})
        self._write_catalogs(tx, configured[CATALOGS])
        self._write_packages(tx, configured[PACKAGES])
        self._write_policies(tx, configured[POLICIES])

    def _write_catalogs(self, tx: Transaction, catalogs: dict[str, tuple[str, dict]]) -> None:
        tx.insert_many(
            f"INSERT INTO {CATALOGS} (originator_id, catalog_id, settings)",
            ((oid, key, dumps(settings)) for oid, (key, settings) in catalogs.items()),
            conflict="ON CONFLICT (originator_id) DO UPDATE SET settings = excluded.settings",
            types=("text", "text", "text"),
        )

    def _write_packages(self, tx: Transaction, packages: dict[str, tuple[str, dict]]) -> None:
        tx.insert_many(
            f"INSERT INTO {PACKAGES} (originator_id, package_id, catalog_id, hidden, name_key, search_text, data)",
            ((oid, key, *package_row(key, settings)) for oid, (key, settings) in packages.items()),
            conflict="ON CONFLICT (originator_id) DO UPDATE SET catalog_id = excluded.catalog_id, hidden = excluded.hidden,"
            " name_key = excluded.name_key, search_text = excluded.search_text, data = excluded.data",
            types=("text", "text", "text", "integer", "text", "text", "text"),
        )
        tx.delete_where_in(PACKAGE_POLICIES, "package_id", [key for key, _ in packages.values()])
        tx.insert_many(
            f"INSERT INTO {PACKAGE_POLICIES} (package_id, position, policy_id)",
            (
                (key, position, policy_id)
                for key, settings in packages.values()
                for position, policy_id in enumerate(settings.get("policies", []))
            ),
            types=("text", "integer", "text"),
        )

    def _write_policies(self, tx: Transaction, policies: dict[str, tuple[str, dict]]) -> None:
        if not policies:
            return
        replaced = {key for (key,) in tx.fetch_where_in(f"SELECT terms_key FROM {POLICIES}", "originator_id", policies)}
        rows, terms = [], {}
        for oid, (key, settings) in policies.items():
            policy = AssignmentPolicy.as_configured(key, settings)
            text = dumps(policy.requestor_terms())
            terms[_terms_key(text)] = text
            rows.append((oid, key, settings.get("access_package"), _terms_key(text), text, dumps(policy_item(policy))))
        tx.insert_many(
            f"INSERT INTO {POLICIES} (originator_id, policy_id, access_package_id, terms_key, terms, data)",
            rows,
            conflict="ON CONFLICT (originator_id) DO UPDATE SET access_package_id = excluded.access_package_id,"
            " terms_key = excluded.terms_key, terms = excluded.terms, data = excluded.data",
            types=("text", "text", "text", "text", "text", "text"),
        )
        tx.insert_many(
            f"INSERT INTO {TERMS} (terms_key, terms)",
            terms.items(),
            conflict="ON CONFLICT (terms_key) DO NOTHING",
            types=("text", "text"),
        )
        unused = replaced - terms.keys()
        still_used = {key for (key,) in tx.fetch_where_in(f"SELECT DISTINCT terms_key FROM {POLICIES}", "terms_key", unused)}
        tx.delete_where_in(TERMS, "terms_key", unused - still_used)

    # --- reading -----------------------------------------------------------------------------

    def requestable(
        self, tx: Transaction, requestor: Requestor | None, *, search: str | None, limit: int, cursor: str | None
    ) -> Page:
        """The packages ``requestor`` may request, hidden ones left out, by name (letter case aside;
        names compared in the database's collation, code point order on SQLite) then id, each
        with the policies they may request under, in the package's order; with ``search``, only
        those whose name or description holds it (letter case aside)."""
        limit = max(1, min(int(limit), MAX_LIMIT))
        key = decode_cursor(cursor, (str, str)) if cursor else None
        if requestor is None:
            return Page()
        catalogs = self._open_catalogs(tx, requestor)
        admitted = self._admitted_terms(tx, requestor)
        if not catalogs or not admitted:
            return Page()
        in_catalogs, catalog_params = _one_of(tx, "p.catalog_id", sorted(catalogs))
        in_terms, terms_params = _one_of(tx, "q.terms_key", sorted(admitted))
        conditions = ["p.hidden = 0", in_catalogs]
        params: list[Any] = [*catalog_params]
        search = (search or "").strip().casefold()
        if search:
            conditions.append("p.search_text LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escaped(search) + "%")
        if key is not None:
            conditions.append("(p.name_key > ? OR (p.name_key = ? AND p.package_id > ?))")
            params += [key[0], key[0], key[1]]
        conditions.append(
            f"EXISTS (SELECT 1 FROM {PACKAGE_POLICIES} l JOIN {POLICIES} q ON q.policy_id = l.policy_id"
            f" WHERE l.package_id = p.package_id AND q.access_package_id = p.package_id AND {in_terms})"
        )
        params += terms_params
        rows = tx.fetchall(
            f"SELECT p.data, p.name_key, p.package_id FROM {PACKAGES} p WHERE {' AND '.join(conditions)}"
            f" ORDER BY p.name_key, p.package_id LIMIT {limit + 1}",
            params,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        policies = self._policies_of(tx, [package_id for _, _, package_id in rows])
        items = []
        for data, _, package_id in rows:
            item = loads(data)
            item["catalog_name"] = catalogs[item["catalog_id"]]
            item["policies"] = [loads(policy) for terms_key, _, policy in policies.get(package_id, []) if terms_key in admitted]
            items.append(item)
        next_cursor = encode_cursor([rows[-1][1], rows[-1][2]]) if more and rows else None
        return Page(items=items, next_cursor=next_cursor)

    def requestable_package(self, tx: Transaction, requestor: Requestor | None, package_id: str) -> dict[str, Any] | None:
        """One package, hidden or not, with only the policies ``requestor`` may request under
        (none when its catalog is closed to them); None when there is no such package."""
        row = tx.fetchone(f"SELECT data, hidden FROM {PACKAGES} WHERE package_id = ?", (package_id,))
        if row is None:
            return None
        item = loads(row[0])
        catalog = tx.fetchone(f"SELECT settings FROM {CATALOGS} WHERE catalog_id = ?", (item["catalog_id"],))
        configured = Catalog.as_configured(item["catalog_id"], loads(catalog[0])) if catalog else None
        item["catalog_name"] = configured.name if configured else None
        item["hidden"] = bool(row[1])
        item["policies"] = []
        if requestor is None or configured is None or not configured.is_open_to(external=requestor.is_external):
            return item
        for _, terms, policy in self._policies_of(tx, [package_id]).get(package_id, []):
            data = loads(policy)
            if _admits(AssignmentPolicy.as_configured(data["id"], loads(terms)), requestor):
                item["policies"].append(data)
        return item

    def _open_catalogs(self, tx: Transaction, requestor: Requestor) -> dict[str, str]:
        """The catalogs open to ``requestor``: id -> name."""
        rows = tx.fetchall(f"SELECT catalog_id, settings FROM {CATALOGS}")
        catalogs = (Catalog.as_configured(key, loads(settings)) for key, settings in rows)
        return {catalog.key: catalog.name for catalog in catalogs if catalog.is_open_to(external=requestor.is_external)}

    def _admitted_terms(self, tx: Transaction, requestor: Requestor) -> set[str]:
        """The keys of the requestor terms under which ``requestor`` may request."""
        return {
            key
            for key, terms in tx.fetchall(f"SELECT terms_key, terms FROM {TERMS}")
            if _admits(AssignmentPolicy.as_configured("", loads(terms)), requestor)
        }

    def _policies_of(self, tx: Transaction, package_ids: list[str]) -> dict[str, list[tuple[str, str, str]]]:
        """Each package's policies (those that name it as their package), in its order:
        package id -> [(terms_key, terms, data)]."""
        rows = tx.fetch_where_in(
            f"SELECT l.package_id, l.position, q.terms_key, q.terms, q.data FROM {PACKAGE_POLICIES} l"
            f" JOIN {POLICIES} q ON q.policy_id = l.policy_id AND q.access_package_id = l.package_id",
            "l.package_id",
            package_ids,
        )
        policies: dict[str, list[tuple[str, str, str]]] = {}
        for package_id, _, terms_key, terms, data in sorted(rows, key=lambda row: (row[0], row[1])):
            policies.setdefault(package_id, []).append((terms_key, terms, data))
        return policies


def _admits(policy: AssignmentPolicy, requestor: Requestor) -> bool:
    """The domain's rule: may ``requestor`` request under ``policy`` (as a request is checked)."""
    return policy.accepts_requests() and policy.allows_requestor(
        requestor.user_id, is_external=requestor.is_external, is_in_group=requestor.is_in_group
    )


def _one_of(tx: Transaction, column: str, values: list[str]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values`` (any number of them), as one parameter."""
    if tx.backend == "postgresql":
        return f"{column} = ANY(?)", [values]
    return f"{column} IN (SELECT value FROM json_each(?))", [dumps(values)]


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
