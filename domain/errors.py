"""Named domain errors. Each rule of the domain raises one of these before any event is triggered.

The classes are grouped by kind (not found, forbidden, conflict, rule violated, invalid input) so
that an adapter can map a whole kind to one answer; each error carries a stable ``code`` and
``details`` for clients.
"""

from __future__ import annotations

import re
from typing import Any


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def code(self) -> str:
        return _snake(type(self).__name__)


# --- kinds -----------------------------------------------------------------------------------


class NotFound(DomainError):
    """The thing named does not exist."""


class Forbidden(DomainError):
    """The actor may not do this."""


class Conflict(DomainError):
    """The thing changed under the caller, or is in a state that excludes the command."""


class RuleViolation(DomainError):
    """Well-formed, but against the rules of the product."""


class InvalidInput(DomainError):
    """Malformed input to a command."""


# --- not found -------------------------------------------------------------------------------


class UnknownUser(NotFound):
    pass


class UnknownGroup(NotFound):
    pass


class UnknownCatalog(NotFound):
    pass


class UnknownAccessPackage(NotFound):
    pass


class UnknownPolicy(NotFound):
    pass


class UnknownRequest(NotFound):
    pass


class UnknownAssignment(NotFound):
    pass


# --- forbidden -------------------------------------------------------------------------------


class NotAnApprover(Forbidden):
    """Only the current stage's primary approvers (and its alternates once escalated) decide."""


class SelfApprovalForbidden(Forbidden):
    """Nobody approves or denies their own request, nor one made for them."""


class NotTheRequestor(Forbidden):
    """Only the requestor may cancel a request."""


class NotTheApprover(Forbidden):
    """Only the approver who gave an approval may revoke it."""


class NotTheAssignee(Forbidden):
    """Only the user who holds an assignment may ask to extend it."""


class AdministratorRequired(Forbidden):
    """The command is for administrators only."""


class RequestorNotAllowed(Forbidden):
    """The policy's requestor scope does not include this user."""


class OnBehalfNotAllowed(Forbidden):
    """Only the target's manager (or an administrator) may request on someone's behalf."""


# --- conflicts -------------------------------------------------------------------------------


class AlreadyDecided(Conflict):
    """Another approver decided the stage first."""


class AlreadyEscalated(Conflict):
    pass


class AlreadyReminded(Conflict):
    pass


class OpenRequestExists(Conflict):
    """The target already has an open request for this package."""


class AlreadyAssigned(Conflict):
    """The target already holds this package."""


class RequestNotPending(Conflict):
    """The request is no longer awaiting a decision (approved, denied, cancelled...)."""


class RequestExpired(RequestNotPending):
    """Nobody decided before the stage's deadline; the request can no longer be decided."""


class NotRevocable(Conflict):
    """Only an approved request can have its approval revoked."""


class AccessNotActive(Conflict):
    """The assignment has ended (or was never delivered)."""


class DeliveryNotInProgress(Conflict):
    pass


class UnknownResource(Conflict):
    pass


class ClockCannotGoBack(Conflict):
    """A manual clock was asked to move to a time before its own: recorded events never move back."""


class ConcurrentModification(Conflict):
    """Retries were exhausted while others kept changing the same aggregate."""


# --- rule violations -------------------------------------------------------------------------


class CatalogDisabled(RuleViolation):
    pass


class ExternalUsersNotAllowed(RuleViolation):
    pass


class IncompatibleAccess(RuleViolation):
    """The target holds an incompatible access package or is in an incompatible group."""


class NoApprovers(RuleViolation):
    """Nobody could decide a stage: its approvers and fallback approvers, or (with escalation) its
    alternate approvers, resolve to nobody once the requestor and the target are left out.

    The message is for the requestor (which package, why, whom to ask); ``details`` carries
    ``stage``, ``resolved_to_nobody`` (the sets, e.g. ``["escalation.approvers",
    "escalation.fallback_approvers"]``), ``left_out`` and a technical ``reason``."""


class JustificationRequired(RuleViolation):
    """The policy asks the requestor for a business justification."""


class ReasonRequired(RuleViolation):
    """The policy asks the approver (or revoker) for a reason."""


class AnswerRequired(RuleViolation):
    pass


class InvalidAnswer(RuleViolation):
    pass


class NotYetDue(RuleViolation):
    """A time-driven command (expire, escalate, remind) was issued before its time."""


class EscalationNotEnabled(RuleViolation):
    pass


class ExtensionNotAllowed(RuleViolation):
    pass


class RequestsNotAccepted(RuleViolation):
    """The policy accepts no requests (scope ``none``): administrators assign directly."""


# --- invalid input ---------------------------------------------------------------------------


class InvalidSchedule(InvalidInput):
    """Requested start/end make no sense (end before start, end in the past)."""


class InvalidDecision(InvalidInput):
    pass


# --- extensions (appended) -------------------------------------------------------------------


class ExtensionTooEarly(RuleViolation):
    """An extension is asked for only within the policy's window before the end of access."""


class ExtensionAlreadyRequested(OpenRequestExists):
    """An extension of this access is already waiting for approval: one open extension at a time."""


class ExtensionPastFixedEnd(ExtensionNotAllowed):
    """An extension would move the end of access past the policy's fixed end date."""
