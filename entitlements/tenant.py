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

from domain import limits
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


# --- limits and values -------------------------------------------------------------------------

# What one file may hold: the API's limits (domain/limits.py; characters, not bytes).
ID_MAX = limits.MAX_ID  # ids, and every reference to one
NAME_MAX = limits.MAX_NAME  # names, display names, organizations, answer choices
QUESTION_MAX = limits.MAX_QUESTION  # the text of a question
DESCRIPTION_MAX = limits.MAX_TEXT  # descriptions
EMAIL_MAX = limits.MAX_EMAIL


def _shown(value: Any) -> str:
    """A value as the file wrote it, for a message: ``'yes'``, ``5``, ``null``, ``true``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return f"the date {value.isoformat()}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Text(fields.Field):
    """Text (a string, never a number or a list), valid Unicode without NUL, at most ``max_length``."""

    default_error_messages = {"null": "expected text, got null"}

    def __init__(self, max_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(f"expected text, got {_shown(value)}")
        problem = limits.text_problem(value, self.max_length)
        if problem:
            raise ValidationError(problem)
        return value


class Flag(fields.Field):
    """``true`` or ``false`` and nothing else (not ``"yes"``, not ``1``)."""

    default_error_messages = {"null": "expected true or false, got null"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        raise ValidationError(f"expected true or false, got {_shown(value)}")


class ListOf(fields.List):
    """A list, whose items keep their positions in the partial result when some are wrong, so the
    checks that follow the shapes (references, stage rules) still see the others where they are."""

    default_error_messages = {"null": "expected a list, got null"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError(f"expected a list, got {_shown(value)}")
        result: list = []
        errors: dict[int, Any] = {}
        for index, each in enumerate(value):
            try:
                result.append(self.inner.deserialize(each, **kwargs))
            except ValidationError as error:
                errors[index] = error.messages
                result.append(error.valid_data if isinstance(error.valid_data, dict) else None)
        if errors:
            raise ValidationError(errors, valid_data=result)
        return result


class Mapping(fields.Nested):
    """A nested entry: a mapping (``{...}``), never a list or a string."""

    default_error_messages = {"null": "expected a mapping, got null"}

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError(f"expected a mapping, got {_shown(value)}")
        return super()._deserialize(value, attr, data, partial=partial, **kwargs)


class DurationField(fields.Field):
    """An ISO 8601 duration such as ``P14D``; kept as written."""

    default_error_messages = {"null": "expected an ISO 8601 duration such as P14D, got null"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(f"expected an ISO 8601 duration such as P14D, got {_shown(value)}")
        try:
            parse_duration(value.strip())
        except ValueError as error:
            raise ValidationError(str(error)) from None
        return value.strip()


class DayField(fields.Field):
    """A calendar day, ``2027-12-31``; kept as ISO text."""

    default_error_messages = {"null": "expected a date such as 2027-12-31, got null"}

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
        raise ValidationError(f"expected a date such as 2027-12-31, got {_shown(value)}")


def _id(**kwargs) -> Text:
    return Text(ID_MAX, validate=IDENTIFIER, **kwargs)


def _name() -> Text:
    return Text(NAME_MAX, load_default=None)


def _description() -> Text:
    return Text(DESCRIPTION_MAX, load_default=None)


def _ids() -> ListOf:
    return ListOf(_id(), load_default=list)


def _one_of(choices: Iterable[str]) -> validate.OneOf:
    return validate.OneOf(tuple(choices), error="must be one of {choices}, got {input!r}")


def _given(original: Any, key: str) -> bool:
    """Whether the file states ``key`` at all (right or wrong): a rule about a field that was given
    but is wrong stays quiet, the field's own problem says what is wrong with it."""
    return isinstance(original, dict) and original.get(key) is not None


# --- schemas -----------------------------------------------------------------------------------
#
# Rules that compare fields of one entry run even when some other field of the entry (or of a
# nested one) is wrong (``skip_on_field_errors=False``), and compare only what is valid, so one run
# reports every problem of the file.


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class UserSchema(StrictSchema):
    id = _id(required=True)
    display_name = _name()
    email = Text(EMAIL_MAX, load_default=None, validate=validate.Email(error="not a valid email address"))
    organization = _name()
    manager = _id(load_default=None)
    external = Flag(load_default=False)
    roles = ListOf(Text(ID_MAX, validate=_one_of(ROLES)), load_default=list)


class GroupSchema(StrictSchema):
    id = _id(required=True)
    display_name = _name()
    members = _ids()


class CatalogSchema(StrictSchema):
    id = _id(required=True)
    name = _name()
    description = _description()
    enabled = Flag(load_default=True)
    enabled_for_external_users = Flag(load_default=False)


class ResourceSchema(StrictSchema):
    id = _id(required=True)
    kind = Text(ID_MAX, required=True)


class AccessPackageSchema(StrictSchema):
    id = _id(required=True)
    catalog = _id(required=True)
    name = _name()
    description = _description()
    hidden = Flag(load_default=False)
    notifications_enabled = Flag(load_default=True)
    resources = ListOf(Mapping(ResourceSchema), load_default=list)
    incompatible_packages = _ids()
    incompatible_groups = _ids()


class ApproverSchema(StrictSchema):
    user = _id()
    group = _id()
    requestor_manager = Flag()

    @validates_schema
    def exactly_one(self, data, **kwargs):
        given = [k for k in ("user", "group", "requestor_manager") if data.get(k)]
        if len(given) != 1:
            raise ValidationError("name exactly one of user, group or requestor_manager: true")


def _approvers(required: bool = False) -> ListOf:
    if required:
        return ListOf(Mapping(ApproverSchema), required=True, validate=validate.Length(min=1, error="name at least one approver"))
    return ListOf(Mapping(ApproverSchema), load_default=list)


class EscalationSchema(StrictSchema):
    enabled = Flag(load_default=False)
    after = DurationField(load_default=None)
    approvers = _approvers()
    fallback_approvers = _approvers()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def complete_when_enabled(self, data, original, **kwargs):
        if not data.get("enabled"):
            return
        if not _given(original, "after"):
            raise ValidationError("an enabled escalation needs 'after' (when to forward, e.g. P3D)", "after")
        if not any(_given(original, key) and original[key] != [] for key in ("approvers", "fallback_approvers")):
            raise ValidationError("an enabled escalation needs alternate approvers", "approvers")


class StageSchema(StrictSchema):
    approvers = _approvers(required=True)
    fallback_approvers = _approvers()
    approver_justification_required = Flag(load_default=False)
    timeout = DurationField(required=True)
    reminder = DurationField(load_default=None)
    escalation = Mapping(EscalationSchema, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def times_within_timeout(self, data, **kwargs):
        timeout = data.get("timeout")  # absent when it is wrong: nothing to compare with
        if not timeout:
            return
        if data.get("reminder") and parse_duration(data["reminder"]) >= parse_duration(timeout):
            raise ValidationError(f"must come before the timeout ({timeout})", "reminder")
        escalation = data.get("escalation") or {}
        if escalation.get("enabled") and escalation.get("after") and parse_duration(escalation["after"]) >= parse_duration(timeout):
            raise ValidationError({"after": [f"must come before the timeout ({timeout})"]}, "escalation")


class ApprovalSchema(StrictSchema):
    required = Flag(load_default=True)
    stages = ListOf(Mapping(StageSchema), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def stages_when_required(self, data, **kwargs):
        if "required" not in data or "stages" not in data:  # one of them is wrong: said already
            return
        if data["required"] and not 1 <= len(data["stages"]) <= 3:
            raise ValidationError("an approval that is required has 1 to 3 stages", "stages")


class RequestorsSchema(StrictSchema):
    scope = Text(ID_MAX, load_default="all_members", validate=_one_of(REQUESTOR_SCOPES))
    users = _ids()
    groups = _ids()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def specific_names_someone(self, data, original, **kwargs):
        if data.get("scope") == "specific" and not (_given(original, "users") and original["users"] != []) and not (
            _given(original, "groups") and original["groups"] != []
        ):
            raise ValidationError("scope 'specific' needs users or groups", "scope")


class QuestionSchema(StrictSchema):
    id = _id(required=True)
    text = Text(QUESTION_MAX, required=True, validate=validate.Length(min=1, error="must not be empty"))
    required = Flag(load_default=False)
    choices = ListOf(Text(NAME_MAX), load_default=list)


class ExpirationSchema(StrictSchema):
    after = DurationField()
    on = DayField()
    never = Flag()

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def exactly_one(self, data, original, **kwargs):
        given = [k for k in ("after", "on", "never") if _given(original, k) and original[k] is not False]
        if len(given) != 1:
            raise ValidationError("state exactly one of after (a duration), on (a date) or never: true")


class ExtensionSchema(StrictSchema):
    allowed = Flag(load_default=False)
    approval_required = Flag(load_default=False)
    reminder_before = DurationField(load_default=None)


class PolicySchema(StrictSchema):
    id = _id(required=True)
    access_package = _id(required=True)
    name = _name()
    description = _description()
    requestors = Mapping(RequestorsSchema, load_default=lambda: {"scope": "all_members", "users": [], "groups": []})
    requestor_justification_required = Flag(load_default=False)
    questions = ListOf(Mapping(QuestionSchema), load_default=list)
    approval = Mapping(ApprovalSchema, load_default=lambda: {"required": False, "stages": []})
    expiration = Mapping(ExpirationSchema, load_default=lambda: {"never": True})
    extension = Mapping(ExtensionSchema, load_default=lambda: {"allowed": False, "approval_required": False, "reminder_before": None})

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def extension_fits_expiration(self, data, original, **kwargs):
        extension = data.get("extension") or {}
        if not extension.get("allowed"):
            return
        expiration = original.get("expiration") if isinstance(original, dict) else None
        if not _given(expiration, "after"):
            raise ValidationError("extensions need an expiration 'after' a duration (there is no period to add)", "extension")

    @validates_schema(skip_on_field_errors=False)
    def extension_approval_has_stages(self, data, **kwargs):
        extension = data.get("extension") or {}
        if not extension.get("approval_required") or "approval" not in data:
            return
        approval = data["approval"]
        if "required" not in approval or "stages" not in approval:  # wrong, and said so already
            return
        if not (approval["required"] and approval["stages"]):
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


SECTIONS: dict[str, type[Schema]] = {
    "users": UserSchema,
    "groups": GroupSchema,
    "catalogs": CatalogSchema,
    "access_packages": AccessPackageSchema,
    "policies": PolicySchema,
}


# --- validation --------------------------------------------------------------------------------


def _entry_label(raw: Any, section: str, index: int) -> str:
    label = f"{section}[{index}]"
    if isinstance(raw, dict):
        key = raw.get("id")
        if isinstance(key, str) and len(key) <= ID_MAX and re.fullmatch(IDENTIFIER.regex, key):
            label += f" ({key})"
    return label


def _flatten(messages: Any, raw: Any, path: str) -> Iterable[str]:
    """marshmallow's nested error dictionary -> ``users[1] (bob).email: not a valid email address``"""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield f"{path}: {_wording(message)}" if path else _wording(message)
        return
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int) and isinstance(raw, list):
                item = raw[key] if key < len(raw) else None
                yield from _flatten(value, item, _entry_label(item, path, key))
            elif key == "_schema":
                yield from _flatten(value, raw, path)
            else:
                child = raw.get(key) if isinstance(raw, dict) else None
                name = key if isinstance(key, str) else repr(key)
                yield from _flatten(value, child, f"{path}.{name}" if path else name)


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
# each section's entries as (label, what loaded): the whole entry when it is valid, the valid part
# of it when it is not (None when it is not even a mapping)
Entries = dict[str, list[tuple[str, "dict | None"]]]


def validate_tenant(
    data: dict,
    *,
    source: str = "<tenant>",
    exists: Exists = lambda cls, key: False,
    resource_kinds: Iterable[str] = ("group",),
    today: date | None = None,
) -> Tenant:
    """Checks the whole file and returns what to store; raises ``TenantFileError`` listing every
    problem of the file at once: shapes and types, durations, stage rules, references, dates.

    ``exists`` answers whether an item is already stored, so a file may refer to items loaded
    from an earlier file. ``today`` (default: today's UTC date) is the day before which an
    expiration ``on`` date has passed."""
    entries, problems = _load_entries(data)
    resource_groups = _resource_groups(entries)
    # a section that is not a list at all is said once; references into it are not checked
    unreadable = {section for section in SECTIONS if section in data and not isinstance(data[section], list)}
    problems += _cross_reference_problems(entries, exists, set(resource_kinds), resource_groups, unreadable)
    problems += _passed_dates(entries, today or datetime.now(timezone.utc).date())
    if problems:
        raise TenantFileError(source, problems)
    return _tenant_items({section: [entry for _, entry in listed] for section, listed in entries.items()}, resource_groups)


def _load_entries(data: dict) -> tuple[Entries, list[str]]:
    """Each entry of each section on its own, so a wrong one hides nothing about the others."""
    problems: list[str] = []
    for key in data:
        if key not in SECTIONS:
            name = key if isinstance(key, str) else repr(key)
            problems.append(f"{name}: unknown field (check the spelling against API.md)")
    entries: Entries = {}
    for section, schema_class in SECTIONS.items():
        entries[section] = []
        raw_entries = data.get(section, [])
        if not isinstance(raw_entries, list):
            problems.append(f"{section}: expected a list, got {_shown(raw_entries)}")
            continue
        schema = schema_class()
        for index, raw in enumerate(raw_entries):
            label = _entry_label(raw, section, index)
            if not isinstance(raw, dict):
                problems.append(f"{label}: expected a mapping, got {_shown(raw)}")
                entries[section].append((label, None))
                continue
            try:
                loaded = schema.load(raw)
            except ValidationError as error:
                problems.extend(_flatten(error.messages, raw, label))
                loaded = error.valid_data if isinstance(error.valid_data, dict) else {}
            entries[section].append((label, loaded))
    return entries, problems


def _valid(items: Any) -> Iterable[tuple[int, Any]]:
    """The positions and items of a list that loaded (wrong items are None, and said already)."""
    if isinstance(items, list):
        for index, item in enumerate(items):
            if item is not None:
                yield index, item


def _resource_groups(entries: Entries) -> list[str]:
    """Groups named only as package resources (not declared in ``groups``)."""
    declared = {g.get("id") for _, g in entries["groups"] if g}
    named = {
        r["id"]
        for _, p in entries["access_packages"]
        if p
        for _, r in _valid(p.get("resources"))
        if r.get("kind") == "group" and r.get("id")
    }
    return sorted(named - declared)


def _passed_dates(entries: Entries, today: date) -> list[str]:
    problems = []
    for label, policy in entries["policies"]:
        on = ((policy or {}).get("expiration") or {}).get("on")
        if on and date.fromisoformat(on) < today:
            problems.append(f"{label}.expiration.on: {on} has passed (today is {today.isoformat()})")
    return problems


def _cross_reference_problems(
    entries: Entries, exists: Exists, kinds: set[str], resource_groups: list[str], unreadable: set[str] = frozenset()
) -> list[str]:
    problems: list[str] = []
    declared: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for section in declared:
        for label, entry in entries[section]:
            key = (entry or {}).get("id")
            if key is None:
                continue
            if key in declared[section]:
                problems.append(f"{label}.id: {key!r} is declared twice in {section}")
            declared[section][key] = label

    def known(section: str, cls: type[ConfigurationItem], key: str) -> bool:
        return key in declared[section] or exists(cls, key)

    def need(where: str, section: str, cls: type[ConfigurationItem], key: str | None, what: str) -> None:
        if key is None or section in unreadable:  # missing or wrong: said already
            return
        if not known(section, cls, key) and not (section == "groups" and key in resource_groups):
            problems.append(f"{where}: no {what} {key!r} in this file or already loaded")

    for label, user in entries["users"]:
        if not user or not user.get("manager"):
            continue
        if user["manager"] == user.get("id"):
            problems.append(f"{label}.manager: a user cannot be their own manager")
        else:
            need(f"{label}.manager", "users", User, user["manager"], "user")
    for label, group in entries["groups"]:
        for m, member in _valid((group or {}).get("members")):
            need(f"{label}.members[{m}]", "users", User, member, "user")
    for label, package in entries["access_packages"]:
        if not package:
            continue
        need(f"{label}.catalog", "catalogs", Catalog, package.get("catalog"), "catalog")
        seen_resources: set[str] = set()
        for r, resource in _valid(package.get("resources")):
            kind = resource.get("kind")
            if kind is not None and kind not in kinds:
                problems.append(f"{label}.resources[{r}].kind: unknown resource kind {kind!r} (known: {', '.join(sorted(kinds))})")
            if resource.get("id") is None:
                continue
            if resource["id"] in seen_resources:
                problems.append(f"{label}.resources[{r}].id: {resource['id']!r} is listed twice")
            seen_resources.add(resource["id"])
        for i, other in _valid(package.get("incompatible_packages")):
            if other == package.get("id"):
                problems.append(f"{label}.incompatible_packages[{i}]: a package cannot be incompatible with itself")
            else:
                need(f"{label}.incompatible_packages[{i}]", "access_packages", AccessPackage, other, "access package")
        for i, group_id in _valid(package.get("incompatible_groups")):
            need(f"{label}.incompatible_groups[{i}]", "groups", Group, group_id, "group")

    def check_approvers(where: str, approvers: Any) -> None:
        for a, approver in _valid(approvers):
            if approver.get("user"):
                need(f"{where}[{a}].user", "users", User, approver["user"], "user")
            elif approver.get("group"):
                need(f"{where}[{a}].group", "groups", Group, approver["group"], "group")

    for label, policy in entries["policies"]:
        if not policy:
            continue
        need(f"{label}.access_package", "access_packages", AccessPackage, policy.get("access_package"), "access package")
        requestors = policy.get("requestors") or {}
        for u, user_id in _valid(requestors.get("users")):
            need(f"{label}.requestors.users[{u}]", "users", User, user_id, "user")
        for g, group_id in _valid(requestors.get("groups")):
            need(f"{label}.requestors.groups[{g}]", "groups", Group, group_id, "group")
        question_ids: set[str] = set()
        for q, question in _valid(policy.get("questions")):
            if question.get("id") is None:
                continue
            if question["id"] in question_ids:
                problems.append(f"{label}.questions[{q}].id: {question['id']!r} is asked twice")
            question_ids.add(question["id"])
        for s, stage in _valid((policy.get("approval") or {}).get("stages")):
            where = f"{label}.approval.stages[{s}]"
            escalation = stage.get("escalation") or {}
            check_approvers(f"{where}.approvers", stage.get("approvers"))
            check_approvers(f"{where}.fallback_approvers", stage.get("fallback_approvers"))
            check_approvers(f"{where}.escalation.approvers", escalation.get("approvers"))
            check_approvers(f"{where}.escalation.fallback_approvers", escalation.get("fallback_approvers"))
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
