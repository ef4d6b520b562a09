"""Assignment policies: who may request a package, what they must answer, who approves in which
stages, when access ends and whether it can be extended."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from domain import errors
from domain.configuration import ConfigurationItem
from domain.durations import parse_duration

REQUESTOR_SCOPES = ("all_members", "all_users", "specific", "none")


class AssignmentPolicy(ConfigurationItem):
    """See the tenant file in API.md for the settings; the loader stores them in canonical form."""

    KIND = "policy"

    @property
    def name(self) -> str:
        return self.settings.get("name") or self.key

    @property
    def description(self) -> str | None:
        return self.settings.get("description")

    @property
    def access_package_id(self) -> str:
        return self.settings["access_package"]

    # --- who may request ---------------------------------------------------------------------

    # The settings that decide who may request (all that ``accepts_requests`` and
    # ``allows_requestor`` read): two policies alike in them admit the same requestors.
    REQUESTOR_SETTINGS = ("requestors",)

    def requestor_terms(self) -> dict:
        """The part of the settings named by :attr:`REQUESTOR_SETTINGS`."""
        return {name: self.settings[name] for name in self.REQUESTOR_SETTINGS if name in self.settings}

    @property
    def requestor_scope(self) -> dict:
        return self.settings.get("requestors", {"scope": "all_members"})

    def accepts_requests(self) -> bool:
        return self.requestor_scope.get("scope") != "none"

    def allows_requestor(self, user_id: str, *, is_external: bool, is_in_group: Callable[[str], bool]) -> bool:
        scope = self.requestor_scope
        kind = scope.get("scope", "all_members")
        if kind == "all_users":
            return True
        if kind == "all_members":
            return not is_external
        if kind == "specific":
            return user_id in scope.get("users", []) or any(is_in_group(g) for g in scope.get("groups", []))
        return False

    # --- what the requestor gives ------------------------------------------------------------

    @property
    def requestor_justification_required(self) -> bool:
        return bool(self.settings.get("requestor_justification_required", False))

    @property
    def questions(self) -> list[dict]:
        return [dict(q) for q in self.settings.get("questions", [])]

    def check_answers(self, answers: dict[str, str]) -> None:
        if not isinstance(answers, dict):
            raise errors.InvalidAnswer("answers must map each question id to its answer")
        questions = {q["id"]: q for q in self.questions}
        for question_id in answers:
            if question_id not in questions:
                raise errors.InvalidAnswer(
                    f"the policy {self.key!r} asks no question {question_id!r}", question_id=question_id
                )
        for question in questions.values():
            value = answers.get(question["id"])
            if value is None or (isinstance(value, str) and not value.strip()):
                if question.get("required", False):
                    raise errors.AnswerRequired(
                        f"question {question['id']!r} ({question.get('text', '')}) must be answered",
                        question_id=question["id"],
                    )
                continue
            if not isinstance(value, str):
                raise errors.InvalidAnswer(
                    f"the answer to {question['id']!r} must be text", question_id=question["id"]
                )
            choices = question.get("choices") or []
            if choices and value not in choices:
                raise errors.InvalidAnswer(
                    f"the answer to {question['id']!r} must be one of {', '.join(choices)}",
                    question_id=question["id"],
                    choices=choices,
                )

    # --- approval ----------------------------------------------------------------------------

    @property
    def approval_required(self) -> bool:
        return bool(self.settings.get("approval", {}).get("required", False))

    @property
    def approval_stages(self) -> list[dict]:
        """The configured stages, whether or not new requests need approval (extensions may)."""
        return [dict(stage) for stage in self.settings.get("approval", {}).get("stages", [])]

    @property
    def stages(self) -> list[dict]:
        """The stages a new request goes through: none when the policy needs no approval."""
        return self.approval_stages if self.approval_required else []

    # --- expiry and extension ----------------------------------------------------------------

    @property
    def expiration(self) -> dict:
        return self.settings.get("expiration", {"never": True})

    @property
    def extension(self) -> dict:
        return self.settings.get("extension", {"allowed": False, "approval_required": False})

    @property
    def extension_allowed(self) -> bool:
        return bool(self.extension.get("allowed", False))

    @property
    def extension_window(self) -> timedelta | None:
        """How long before the end of access an extension may be asked for: the extension's
        ``reminder_before`` (when the user is reminded), else one period of ``expiration.after``
        (so one extension at most per period); ``None``: any time while access lasts."""
        before = self.extension.get("reminder_before") or self.expiration.get("after")
        return parse_duration(before) if before else None

    def check_extension_window(self, end: datetime, now: datetime) -> None:
        """An extension is asked for only within :attr:`extension_window` before ``end``."""
        window = self.extension_window
        if window is None:
            return
        opens_at = end - window
        if now < opens_at:
            raise errors.ExtensionTooEarly(
                f"it is too early to extend this access: it ends on {_when(end)}, and an extension can be "
                f"asked for only in its last {_span(window)}, from {_when(opens_at)}",
                end=end.isoformat(),
                extension_opens_at=opens_at.isoformat(),
            )


def access_end(expiration: dict, start: datetime, requested_end: datetime | None) -> datetime | None:
    """When access granted at ``start`` ends: the policy's limit, or the requested end if earlier."""
    policy_end: datetime | None = None
    if expiration.get("after"):
        policy_end = start + parse_duration(expiration["after"])
    elif expiration.get("on"):
        policy_end = end_of_day(expiration["on"])
    if requested_end is None:
        return policy_end
    if policy_end is None:
        return requested_end
    return min(policy_end, requested_end)


def extended_end(expiration: dict, current_end: datetime | None) -> datetime | None:
    """The new end of access after an approved extension: one more period of ``expiration.after``;
    under a fixed end date (``expiration.on``) up to that date and never past it."""
    if current_end is None:
        return None
    if expiration.get("after"):
        return current_end + parse_duration(expiration["after"])
    if expiration.get("on"):
        fixed_end = end_of_day(expiration["on"])
        if current_end >= fixed_end:
            raise errors.ExtensionPastFixedEnd(
                f"this access already lasts until the policy's end date, {_day(expiration['on'])}; "
                "it cannot be extended past that date",
                fixed_end=fixed_end.isoformat(),
                end=current_end.isoformat(),
            )
        return fixed_end
    raise errors.ExtensionNotAllowed(
        "the policy gives access no period to add, so this access cannot be extended", expiration=expiration
    )


def end_of_day(day: str | date) -> datetime:
    """``on: 2027-12-31`` means access lasts through that day (UTC)."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime.combine(day, time(0, 0), tzinfo=timezone.utc) + timedelta(days=1)


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _day(day: str | date) -> str:
    return day if isinstance(day, str) else day.isoformat()


def _span(duration: timedelta) -> str:
    """``7 days``, ``1 day 12 hours``, ``12 hours``."""
    hours, rest = divmod(int(duration.total_seconds()), 3600)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour")) if n]
    if not parts:
        parts = [f"{rest // 60 or 1} minute{'' if rest // 60 == 1 else 's'}"]
    return " ".join(parts)
