"""The tenant file of API.md: directory, catalogs, access packages and policies, in YAML or JSON.

Reading a file validates all of it before anything is stored and reports every problem with where
it is (which entry, which field) and why. Loading stores the whole file in one transaction and
records only what changed, so loading the same file twice changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from domain.access_package import AccessPackage
from domain.application import EntitlementsApplication
from domain.assignment_policy import REQUESTOR_SCOPES, AssignmentPolicy
from domain.catalog import Catalog
from domain.configuration import ConfigurationItem
from domain.durations import parse_duration
from domain.group import Group
from domain.user import User

LOADER = "tenant-file"
ROLES = ("admin", "auditor")
IDENTIFIER = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$",
    error="must start with a letter or digit and use only letters, digits and . _ @ + -",
)


class TenantFileError(Exception):
    """The file cannot be loaded; ``problems`` lists each one as ``where: why``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


# --- reading -----------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (YAML 1.1 reads ``on:`` — an expiration key — as True.)"""


_YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_tenant_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TenantFileError(str(path), ["no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise TenantFileError(str(path), [f"cannot read it: {error}"]) from None
    return parse_tenant_text(text, source=str(path), is_json=path.suffix.lower() == ".json")


def parse_tenant_text(text: str, *, source: str = "<tenant>", is_json: bool = False) -> dict:
    try:
        data = json.loads(text) if is_json else yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - safe loader
    except json.JSONDecodeError as error:
        raise TenantFileError(source, [f"line {error.lineno}, column {error.colno}: not valid JSON: {error.msg}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise TenantFileError(source, [f"{where}not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TenantFileError(source, ["the file must hold a mapping with users, groups, catalogs, access_packages and policies"])
    return data


# --- schemas -----------------------------------------------------------------------------------


class DurationField(fields.Field):
    """An ISO 8601 duration such as ``P14D``; kept as written."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("must be an ISO 8601 duration such as P14D")
        try:
            parse_duration(value.strip())
        except ValueError as error:
            raise ValidationError(str(error)) from None
        return value.strip()


class DayField(fields.Field):
    """A calendar day, ``2027-12-31``; kept as ISO text."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValidationError("must be a date such as 2027-12-31")


def _ids() -> fields.List:
    return fields.List(fields.String(validate=IDENTIFIER), load_default=list)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class UserSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    display_name = fields.String(load_default=None)
    email = fields.Email(load_default=None)
    organization = fields.String(load_default=None)
    manager = fields.String(load_default=None, validate=IDENTIFIER)
    external = fields.Boolean(load_default=False)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), load_default=list)


class GroupSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    display_name = fields.String(load_default=None)
    members = _ids()


class CatalogSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    name = fields.String(load_default=None)
    description = fields.String(load_default=None)
    enabled = fields.Boolean(load_default=True)
    enabled_for_external_users = fields.Boolean(load_default=False)


class ResourceSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    kind = fields.String(required=True)


class AccessPackageSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    catalog = fields.String(required=True, validate=IDENTIFIER)
    name = fields.String(load_default=None)
    description = fields.String(load_default=None)
    hidden = fields.Boolean(load_default=False)
    notifications_enabled = fields.Boolean(load_default=True)
    resources = fields.List(fields.Nested(ResourceSchema), load_default=list)
    incompatible_packages = _ids()
    incompatible_groups = _ids()


class ApproverSchema(StrictSchema):
    user = fields.String(validate=IDENTIFIER)
    group = fields.String(validate=IDENTIFIER)
    requestor_manager = fields.Boolean()

    @validates_schema
    def exactly_one(self, data, **kwargs):
        given = [k for k in ("user", "group", "requestor_manager") if data.get(k)]
        if len(given) != 1:
            raise ValidationError("name exactly one of user, group or requestor_manager: true")


def _approvers(required: bool = False) -> fields.List:
    if required:
        return fields.List(fields.Nested(ApproverSchema), required=True, validate=validate.Length(min=1, error="name at least one approver"))
    return fields.List(fields.Nested(ApproverSchema), load_default=list)


class EscalationSchema(StrictSchema):
    enabled = fields.Boolean(load_default=False)
    after = DurationField(load_default=None)
    approvers = _approvers()
    fallback_approvers = _approvers()

    @validates_schema
    def complete_when_enabled(self, data, **kwargs):
        if not data.get("enabled"):
            return
        if not data.get("after"):
            raise ValidationError("an enabled escalation needs 'after' (when to forward, e.g. P3D)", "after")
        if not data.get("approvers") and not data.get("fallback_approvers"):
            raise ValidationError("an enabled escalation needs alternate approvers", "approvers")


class StageSchema(StrictSchema):
    approvers = _approvers(required=True)
    fallback_approvers = _approvers()
    approver_justification_required = fields.Boolean(load_default=False)
    timeout = DurationField(required=True)
    reminder = DurationField(load_default=None)
    escalation = fields.Nested(EscalationSchema, load_default=None)

    @validates_schema
    def times_within_timeout(self, data, **kwargs):
        timeout = data.get("timeout")
        if not timeout:
            return
        if data.get("reminder") and parse_duration(data["reminder"]) >= parse_duration(timeout):
            raise ValidationError(f"must come before the timeout ({timeout})", "reminder")
        escalation = data.get("escalation") or {}
        if escalation.get("enabled") and escalation.get("after") and parse_duration(escalation["after"]) >= parse_duration(timeout):
            raise ValidationError({"after": [f"must come before the timeout ({timeout})"]}, "escalation")


class ApprovalSchema(StrictSchema):
    required = fields.Boolean(load_default=True)
    stages = fields.List(fields.Nested(StageSchema), load_default=list)

    @validates_schema
    def stages_when_required(self, data, **kwargs):
        stages = data.get("stages") or []
        if data.get("required", True) and not 1 <= len(stages) <= 3:
            raise ValidationError("an approval that is required has 1 to 3 stages", "stages")


class RequestorsSchema(StrictSchema):
    scope = fields.String(load_default="all_members", validate=validate.OneOf(REQUESTOR_SCOPES))
    users = _ids()
    groups = _ids()

    @validates_schema
    def specific_names_someone(self, data, **kwargs):
        if data.get("scope") == "specific" and not (data.get("users") or data.get("groups")):
            raise ValidationError("scope 'specific' needs users or groups", "scope")


class QuestionSchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    text = fields.String(required=True, validate=validate.Length(min=1))
    required = fields.Boolean(load_default=False)
    choices = fields.List(fields.String(), load_default=list)


class ExpirationSchema(StrictSchema):
    after = DurationField()
    on = DayField()
    never = fields.Boolean()

    @validates_schema
    def exactly_one(self, data, **kwargs):
        given = [k for k in ("after", "on", "never") if data.get(k)]
        if len(given) != 1:
            raise ValidationError("state exactly one of after (a duration), on (a date) or never: true")


class ExtensionSchema(StrictSchema):
    allowed = fields.Boolean(load_default=False)
    approval_required = fields.Boolean(load_default=False)
    reminder_before = DurationField(load_default=None)


class PolicySchema(StrictSchema):
    id = fields.String(required=True, validate=IDENTIFIER)
    access_package = fields.String(required=True, validate=IDENTIFIER)
    name = fields.String(load_default=None)
    description = fields.String(load_default=None)
    requestors = fields.Nested(RequestorsSchema, load_default=lambda: {"scope": "all_members", "users": [], "groups": []})
    requestor_justification_required = fields.Boolean(load_default=False)
    questions = fields.List(fields.Nested(QuestionSchema), load_default=list)
    approval = fields.Nested(ApprovalSchema, load_default=lambda: {"required": False, "stages": []})
    expiration = fields.Nested(ExpirationSchema, load_default=lambda: {"never": True})
    extension = fields.Nested(ExtensionSchema, load_default=lambda: {"allowed": False, "approval_required": False, "reminder_before": None})

    @validates_schema
    def extension_fits_expiration(self, data, **kwargs):
        extension = data.get("extension") or {}
        expiration = data.get("expiration") or {}
        if extension.get("allowed") and not expiration.get("after"):
            raise ValidationError("extensions need an expiration 'after' a duration (there is no period to add)", "extension")

    @validates_schema
    def extension_approval_has_stages(self, data, **kwargs):
        extension = data.get("extension") or {}
        approval = data.get("approval") or {}
        if extension.get("approval_required") and not (approval.get("required", True) and approval.get("stages")):
            raise ValidationError(
                "extension.approval_required needs approval stages (approval.required is false or has no stages)", "extension"
            )

    @post_load
    def canonical(self, data, **kwargs):
        data["approval"].setdefault("stages", [])
        for stage in data["approval"]["stages"]:
            if stage.get("escalation") is None:
                stage["escalation"] = {"enabled": False, "after": None, "approvers": [], "fallback_approvers": []}
        data["expiration"] = {k: v for k, v in data["expiration"].items() if v}
        return data


class TenantSchema(Schema):
    class Meta:
        unknown = RAISE

    users = fields.List(fields.Nested(UserSchema), load_default=list)
    groups = fields.List(fields.Nested(GroupSchema), load_default=list)
    catalogs = fields.List(fields.Nested(CatalogSchema), load_default=list)
    access_packages = fields.List(fields.Nested(AccessPackageSchema), load_default=list)
    policies = fields.List(fields.Nested(PolicySchema), load_default=list)


# --- validation --------------------------------------------------------------------------------


def _entry_label(raw: Any, section: str, index: int) -> str:
    label = f"{section}[{index}]"
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        label += f" ({raw['id']})"
    return label


def _flatten(messages: Any, raw: Any, path: str) -> Iterable[str]:
    """marshmallow's nested error dictionary -> ``users[1] (bob).email: Not a valid email address.``"""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield f"{path}: {_wording(message)}" if path else _wording(message)
        return
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                item = raw[key] if isinstance(raw, list) and key < len(raw) else None
                yield from _flatten(value, item, _entry_label(item, path, key))
            elif key == "_schema":
                yield from _flatten(value, raw, path)
            else:
                child = raw.get(key) if isinstance(raw, dict) else None
                yield from _flatten(value, child, f"{path}.{key}" if path else str(key))


def _wording(message: str) -> str:
    return {
        "Unknown field.": "unknown field (check the spelling against API.md)",
        "Missing data for required field.": "required, but missing",
    }.get(message, message)


@dataclass
class Tenant:
    """A validated tenant file: the configuration items to store, in dependency order."""

    items: list[tuple[type[ConfigurationItem], str, dict]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    packages: list[dict] = field(default_factory=list)
    policies: list[dict] = field(default_factory=list)
    # policies whose access package is not in this file but was stored by an earlier one
    orphan_policies: dict[str, list[str]] = field(default_factory=dict)
    # groups named only as resources: created empty (delivery adds their members) when missing
    resource_groups: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """How many items loading it stores or leaves unchanged, the packages its orphan policies join included."""
        return len(self.items) + len(self.resource_groups) + len(self.orphan_policies)


Exists = Callable[[type[ConfigurationItem], str], bool]


def validate_tenant(
    data: dict,
    *,
    source: str = "<tenant>",
    exists: Exists = lambda cls, key: False,
    resource_kinds: Iterable[str] = ("group",),
    today: date | None = None,
) -> Tenant:
    """Checks the whole file (shapes, then cross-references) and returns what to store.

    ``exists`` answers whether an item is already stored, so a file may refer to items loaded
    from an earlier file. ``today`` (default: today's UTC date) is the day before which an
    expiration ``on`` date has passed."""
    try:
        loaded = TenantSchema().load(data)
    except ValidationError as error:
        raise TenantFileError(source, list(_flatten(error.messages, data, ""))) from None
    resource_groups = _resource_groups(loaded)
    problems = _cross_reference_problems(loaded, exists, set(resource_kinds), resource_groups)
    problems += _passed_dates(loaded, today or datetime.now(timezone.utc).date())
    if problems:
        raise TenantFileError(source, problems)
    return _tenant_items(loaded, resource_groups)


def _resource_groups(loaded: dict) -> list[str]:
    """Groups named only as package resources (not declared in ``groups``)."""
    declared = {g["id"] for g in loaded["groups"]}
    named = {r["id"] for p in loaded["access_packages"] for r in p["resources"] if r["kind"] == "group"}
    return sorted(named - declared)


def _passed_dates(loaded: dict, today: date) -> list[str]:
    problems = []
    for index, policy in enumerate(loaded["policies"]):
        on = policy["expiration"].get("on")
        if on and date.fromisoformat(on) < today:
            label = _entry_label(policy, "policies", index)
            problems.append(f"{label}.expiration.on: {on} has passed (today is {today.isoformat()})")
    return problems


def _cross_reference_problems(loaded: dict, exists: Exists, kinds: set[str], resource_groups: list[str]) -> list[str]:
    problems: list[str] = []
    declared = {section: {} for section in ("users", "groups", "catalogs", "access_packages", "policies")}
    for section in declared:
        for index, entry in enumerate(loaded[section]):
            label = _entry_label(entry, section, index)
            if entry["id"] in declared[section]:
                problems.append(f"{label}.id: {entry['id']!r} is declared twice in {section}")
            declared[section][entry["id"]] = label

    def known(section: str, cls: type[ConfigurationItem], key: str) -> bool:
        return key in declared[section] or exists(cls, key)

    def need(where: str, section: str, cls: type[ConfigurationItem], key: str, what: str) -> None:
        if not known(section, cls, key) and not (section == "groups" and key in resource_groups):
            problems.append(f"{where}: no {what} {key!r} in this file or already loaded")

    for index, user in enumerate(loaded["users"]):
        label = _entry_label(user, "users", index)
        if user["manager"]:
            if user["manager"] == user["id"]:
                problems.append(f"{label}.manager: a user cannot be their own manager")
            else:
                need(f"{label}.manager", "users", User, user["manager"], "user")
    for index, group in enumerate(loaded["groups"]):
        label = _entry_label(group, "groups", index)
        for m, member in enumerate(group["members"]):
            need(f"{label}.members[{m}]", "users", User, member, "user")
    for index, package in enumerate(loaded["access_packages"]):
        label = _entry_label(package, "access_packages", index)
        need(f"{label}.catalog", "catalogs", Catalog, package["catalog"], "catalog")
        seen_resources: set[str] = set()
        for r, resource in enumerate(package["resources"]):
            if resource["kind"] not in kinds:
                problems.append(
                    f"{label}.resources[{r}].kind: unknown resource kind {resource['kind']!r} (known: {', '.join(sorted(kinds))})"
                )
            if resource["id"] in seen_resources:
                problems.append(f"{label}.resources[{r}].id: {resource['id']!r} is listed twice")
            seen_resources.add(resource["id"])
        for i, other in enumerate(package["incompatible_packages"]):
            if other == package["id"]:
                problems.append(f"{label}.incompatible_packages[{i}]: a package cannot be incompatible with itself")
            else:
                need(f"{label}.incompatible_packages[{i}]", "access_packages", AccessPackage, other, "access package")
        for i, group_id in enumerate(package["incompatible_groups"]):
            need(f"{label}.incompatible_groups[{i}]", "groups", Group, group_id, "group")

    def check_approvers(where: str, approvers: list[dict]) -> None:
        for a, approver in enumerate(approvers):
            if approver.get("user"):
                need(f"{where}[{a}].user", "users", User, approver["user"], "user")
            elif approver.get("group"):
                need(f"{where}[{a}].group", "groups", Group, approver["group"], "group")

    for index, policy in enumerate(loaded["policies"]):
        label = _entry_label(policy, "policies", index)
        need(f"{label}.access_package", "access_packages", AccessPackage, policy["access_package"], "access package")
        for u, user_id in enumerate(policy["requestors"]["users"]):
            need(f"{label}.requestors.users[{u}]", "users", User, user_id, "user")
        for g, group_id in enumerate(policy["requestors"]["groups"]):
            need(f"{label}.requestors.groups[{g}]", "groups", Group, group_id, "group")
        question_ids: set[str] = set()
        for q, question in enumerate(policy["questions"]):
            if question["id"] in question_ids:
                problems.append(f"{label}.questions[{q}].id: {question['id']!r} is asked twice")
            question_ids.add(question["id"])
        for s, stage in enumerate(policy["approval"]["stages"]):
            where = f"{label}.approval.stages[{s}]"
            check_approvers(f"{where}.approvers", stage["approvers"])
            check_approvers(f"{where}.fallback_approvers", stage["fallback_approvers"])
            check_approvers(f"{where}.escalation.approvers", stage["escalation"]["approvers"])
            check_approvers(f"{where}.escalation.fallback_approvers", stage["escalation"]["fallback_approvers"])
    return problems


def _tenant_items(loaded: dict, resource_groups: list[str]) -> Tenant:
    tenant = Tenant()
    for user in loaded["users"]:
        tenant.items.append((User, user["id"], {k: v for k, v in user.items() if k != "id"}))
    for group in loaded["groups"]:
        tenant.items.append((Group, group["id"], {k: v for k, v in group.items() if k != "id"}))
    # A group named only as a resource is created empty: delivery adds its members.
    tenant.resource_groups = resource_groups
    for catalog in loaded["catalogs"]:
        tenant.items.append((Catalog, catalog["id"], {k: v for k, v in catalog.items() if k != "id"}))
    policies_by_package: dict[str, list[str]] = {}
    for policy in loaded["policies"]:
        policies_by_package.setdefault(policy["access_package"], []).append(policy["id"])
    for package in loaded["access_packages"]:
        settings = {k: v for k, v in package.items() if k != "id"}
        settings["policies"] = policies_by_package.pop(package["id"], [])
        tenant.items.append((AccessPackage, package["id"], settings))
        tenant.packages.append({"id": package["id"], **settings})
    for policy in loaded["policies"]:
        settings = {k: v for k, v in policy.items() if k != "id"}
        tenant.items.append((AssignmentPolicy, policy["id"], settings))
        tenant.policies.append({"id": policy["id"], **settings})
    tenant.counts = {section: len(loaded[section]) for section in ("users", "groups", "catalogs", "access_packages", "policies")}
    tenant.counts["resource groups"] = len(resource_groups)
    tenant.orphan_policies = policies_by_package
    return tenant


@dataclass
class LoadResult:
    tenant: Tenant
    changed: list[str]


def load_tenant(app: EntitlementsApplication, path: str | Path, *, actor: str = LOADER) -> LoadResult:
    """Validates the file, then stores it in one transaction; unchanged items record nothing."""
    data = read_tenant_file(path)
    return load_tenant_data(app, data, source=str(path), actor=actor)


def load_tenant_data(app: EntitlementsApplication, data: dict, *, source: str = "<tenant>", actor: str = LOADER) -> LoadResult:
    def exists(cls: type[ConfigurationItem], key: str) -> bool:
        return app.find(cls, cls.id_for(key)) is not None

    tenant = validate_tenant(data, source=source, exists=exists, resource_kinds=app.resource_kinds.keys())
    new_groups = [group_id for group_id in tenant.resource_groups if not exists(Group, group_id)]
    # Policy lists are merged with the stored ones right before ``configure``. A load that stores
    # a policy of the same package between this read and ``configure``'s save can still lose it
    # from the list (``configure`` retries with the settings read here); loading that file again
    # restores it.
    items = _with_stored_policies(app, tenant)
    items += [(Group, group_id, {"display_name": None, "members": []}) for group_id in new_groups]
    changed = app.configure(items, actor=actor)
    return LoadResult(tenant=tenant, changed=changed)


def _with_stored_policies(app: EntitlementsApplication, tenant: Tenant) -> list[tuple[type[ConfigurationItem], str, dict]]:
    """The file's items, each package keeping the policies it already has: nothing a file omits is
    detached. A package in the file lists the file's policies first; a package stored by an earlier
    file gets the file's policies for it added at the end."""
    package_of = {policy["id"]: policy["access_package"] for policy in tenant.policies}

    def merged(package_id: str, first: list[str], then: list[str]) -> list[str]:
        # a policy this file moves to another package leaves this one
        return list(dict.fromkeys(p for p in [*first, *then] if package_of.get(p, package_id) == package_id))

    items = []
    for package_id, policy_ids in tenant.orphan_policies.items():
        settings = dict(app.access_package(package_id).settings)
        settings["policies"] = merged(package_id, settings.get("policies", []), policy_ids)
        items.append((AccessPackage, package_id, settings))
    for cls, key, settings in tenant.items:
        stored = app.find(cls, cls.id_for(key)) if cls is AccessPackage else None
        if stored is not None:
            settings = {**settings, "policies": merged(key, settings["policies"], stored.settings.get("policies", []))}
        items.append((cls, key, settings))
    return items
