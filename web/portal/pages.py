"""The portal's pages (API.md, "Portal"): home, access packages, requests, approvals, my access,
sign-in and sign-out.

Each page reads the read models the API reads; each form is checked by the API's own input
schema and carried out by the same application command, whose refusals (``DomainError``) are
shown on the page, in words, beside the field they are about. After a change the page it leads
to waits, as an API read with ``X-Min-Position`` would, for the read model to show it.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable

import marshmallow as ma
from flask import abort, flash, redirect, render_template, request, url_for

from domain import errors as refusals
from domain.assignment import ACTIVE_STATES
from domain.errors import DomainError
from entitlements.sign_in import LINK_EXPIRED, LINK_UNKNOWN, LINK_USED
from projections.paging import Page
from web.api.requests.schemas import DecisionCreateSchema, RequestCreateSchema, RevocationCreateSchema
from web.auth import may_read_request
from web.consistency import at_least, written
from web.context import services, web_context
from web.errors import ApiError, status_of
from web.portal import blp, oidc
from web.portal import session as portal_session
from web.portal.session import person, person_id, sign_in_required

PAGE_SIZE = 50
MISSING_REQUEST_WAIT = 2.0  # seconds a page waits for a request or an access its read model does not have yet
APPROVAL_TABS = ("pending", "history")
LINK_REFUSALS = {
    LINK_UNKNOWN: "This sign-in link is not valid. Check that you copied all of it, or ask for a new one.",
    LINK_USED: "This sign-in link was already used. Each link signs in once: ask for a new one.",
    LINK_EXPIRED: "This sign-in link has expired (links are valid for 15 minutes). Ask for a new one.",
}
NOT_IN_DIRECTORY = "You are not in this organization's directory, so you cannot sign in here. Ask an administrator."


# --- helpers -----------------------------------------------------------------------------------


def people(user_ids: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """Directory entries of the people a page names, by id (one read for the page)."""
    return services().read_models.users({user_id for user_id in user_ids if user_id})


def shown_after(position: int, *read_models: str) -> None:
    """Waits until each of ``read_models`` shows a change written at ``position``; when one does
    not in time, the change is still made, and the page says its lists may lag a moment."""
    try:
        for read_model in read_models:
            at_least(position, read_model)
    except ApiError:
        flash("Saved. It may take a few seconds to appear everywhere.", "info")


# The refusals a form can get that are about one of its fields, said for people.
FIELD_REFUSALS: dict[type[DomainError], tuple[str, str | None]] = {
    refusals.JustificationRequired: ("justification", "Enter a justification: this policy asks for one."),
    refusals.ReasonRequired: ("reason", "Enter a reason: it is required here."),
    refusals.AnswerRequired: ("answers", "Answer this question: it is required."),
    refusals.InvalidAnswer: ("answers", None),
}


def refusal(error: DomainError) -> tuple[str, str | None]:
    """(the message, the form field it is about or None) of a command's refusal; a refusal about
    one answer names ``answers.QUESTION_ID``."""
    field = error.details.get("field")
    if isinstance(field, str):
        return error.message, field
    for kind, (name, words) in FIELD_REFUSALS.items():
        if isinstance(error, kind):
            question = error.details.get("question_id")
            return words or error.message, f"{name}.{question}" if name == "answers" and question else name
    return error.message, None


def field_errors(error: ma.ValidationError) -> dict[str, str]:
    """marshmallow's messages, one sentence per field."""
    messages = error.messages if isinstance(error.messages, dict) else {"_": error.messages}
    return {
        name: " ".join(str(m) for m in (problems if isinstance(problems, list) else [problems]))
        for name, problems in messages.items()
    }


def found_soon(identifier: str, read_model: str, read) -> dict[str, Any] | None:
    """``read(id)`` of an id from a link (ids are UUIDs: anything else is None at once). An
    email's link can arrive before ``read_model`` has what it names, so when it is missing and a
    projector runs beside this process, waits a moment for the read model and reads again."""
    try:
        identifier = str(uuid.UUID(identifier))
    except ValueError:
        return None
    found = read(identifier)
    if found is None and not web_context().project_inline:
        read_models = services().read_models
        read_models.wait_for(read_models.head(), timeout=MISSING_REQUEST_WAIT, names=[read_model])
        found = read(identifier)
    return found


def request_or_404(request_id: str) -> dict[str, Any]:
    details = found_soon(request_id, "requests", services().read_models.request)
    if details is None:
        abort(404, description=f"There is no request {request_id}.")
    if not may_read_request(person(), details):
        abort(403, description="Only the requestor, the person it is for, its approvers and auditors may see this request.")
    return details


# --- sign-in -----------------------------------------------------------------------------------


@blp.get("/sign-in")
def sign_in():
    if person() is not None:
        return redirect(portal_session.safe_next(request.args.get("next")))
    return render_template("sign_in.html", oidc=bool(services().settings.oidc_issuer))


@blp.get("/sign-in/link/<secret>")
def sign_in_link(secret: str):
    """Asks before using the link: a GET changes nothing (mail scanners open links too)."""
    found = services().sign_in.link_user(secret)
    if found.refused:
        return render_template("sign_in_refused.html", message=LINK_REFUSALS[found.refused]), 400
    who = services().read_models.user(found.user_id)
    if who is None:
        return render_template("sign_in_refused.html", message=NOT_IN_DIRECTORY), 403
    return render_template("sign_in_link.html", who=who, secret=secret)


@blp.post("/sign-in/link/<secret>")
def use_sign_in_link(secret: str):
    redeemed = services().sign_in.redeem_link(secret)
    if redeemed.refused:
        return render_template("sign_in_refused.html", message=LINK_REFUSALS[redeemed.refused]), 400
    if services().read_models.user(redeemed.user_id) is None:
        return render_template("sign_in_refused.html", message=NOT_IN_DIRECTORY), 403
    return redirect(portal_session.begin(redeemed.user_id, method="link"))


@blp.post("/sign-in/oidc")
def sign_in_oidc():
    if oidc.client() is None:
        abort(404, description="This deployment signs in with one-time links, not an identity provider.")
    try:
        return oidc.redirect_to_provider(services().settings.base_url)
    except oidc.ProviderUnreachable:
        message = "The identity provider cannot be reached just now. Try again in a few minutes."
        return render_template("sign_in_refused.html", message=message), 503


@blp.get("/sign-in/oidc/callback")
def oidc_callback():
    """The provider sends the browser back here; Authlib checks state, nonce and PKCE."""
    if oidc.client() is None:
        abort(404, description="This deployment signs in with one-time links, not an identity provider.")
    if person() is not None:  # the provider's redirect again (Back, a reload): already signed in
        return redirect(url_for("portal.home"))
    try:
        claims = oidc.claims_of_callback()
    except oidc.SignInFailed as error:
        return render_template("sign_in_refused.html", message=f"Signing in did not work: {error}. Try again."), 400
    who = oidc.directory_user(claims, services().read_models, services().settings.oidc_user_id_claim)
    if who is None:
        return render_template("sign_in_refused.html", message=NOT_IN_DIRECTORY), 403
    return redirect(portal_session.begin(who["id"], method="oidc"))


@blp.get("/sign-out")
def sign_out_page():
    if person() is None:
        return redirect(url_for("portal.sign_in"))
    return render_template("sign_out.html")


@blp.post("/sign-out")
def sign_out():
    portal_session.end()
    flash("You are signed out.", "info")
    return redirect(url_for("portal.sign_in"))


# --- home --------------------------------------------------------------------------------------


@blp.get("/")
@sign_in_required
def home():
    user_id = person_id()
    read_models = services().read_models
    pending = read_models.pending(user_id, limit=5)
    mine = read_models.requests_of(user_id, limit=5)
    return render_template("home.html", pending=pending, mine=mine)


# --- access packages ---------------------------------------------------------------------------


@blp.get("/access-packages")
@sign_in_required
def access_packages():
    search = (request.args.get("search") or "").strip() or None
    page = services().read_models.requestable_packages(person_id(), search=search, limit=PAGE_SIZE, cursor=request.args.get("cursor") or None)
    return render_template("access_packages.html", page=page, search=search or "")


def package_or_404(package_id: str) -> dict[str, Any]:
    package = services().read_models.requestable_package(person_id(), package_id)
    if package is None:
        abort(404, description=f"There is no access package {package_id}.")
    return package


@blp.get("/access-packages/<package_id>")
@sign_in_required
def access_package(package_id: str):
    package = package_or_404(package_id)
    return render_template("access_package.html", package=package, form={}, errors={}, reports=direct_reports())


def direct_reports() -> list[dict[str, Any]]:
    return services().read_models.reports_of(person_id())


@blp.post("/access-packages/<package_id>")
@sign_in_required
def submit_request(package_id: str):
    package = package_or_404(package_id)
    form = request.form
    policy_id = form.get("policy_id") or None
    policy = next((p for p in package["policies"] if p["id"] == policy_id), None)
    answers: dict[str, Any] = {}
    for question in (policy or {}).get("questions") or []:
        value = form.get(f"answer-{policy['id']}-{question['id']}", "").strip()
        if value:
            answers[question["id"]] = value
    data = {
        "access_package_id": package_id,
        "policy_id": policy_id,
        "target_user_id": form.get("target_user_id") or None,
        "justification": form.get("justification", "").strip() or None,
        "answers": answers or None,
        "start": local_instant(form.get("start")),
        "end": local_instant(form.get("end")),
    }
    problems: dict[str, str] = {}
    if policy is None:
        problems["policy_id"] = "Choose a policy."
    try:
        args = RequestCreateSchema().load(data)
    except ma.ValidationError as error:
        problems.update(field_errors(error))
    if not problems:
        try:
            receipt = written(services().app.submit_request(requestor_id=person_id(), **args))
        except DomainError as error:
            message, field = refusal(error)
            if field and field.startswith("answers.") and policy is not None:
                field = f"answer-{policy['id']}-{field.removeprefix('answers.')}"
            problems[field or "_"] = message
            status = status_of(error)
        else:
            shown_after(receipt.position, "requests")
            flash("Your request was submitted.", "success")
            return redirect(url_for("portal.request_details", request_id=receipt.id))
    else:
        status = 400
    reports = direct_reports()
    shown = {"_", "policy_id", "answers", "justification", "start", "end", *(("target_user_id",) if reports else ())}
    shown.update(f"answer-{p['id']}-{q['id']}" for p in package["policies"] for q in p.get("questions") or [])
    return (
        render_template("access_package.html", package=package, form=form, errors=placed(problems, shown), reports=reports),
        status,
    )


def local_instant(value: str | None) -> str | None:
    """A ``datetime-local`` field (``2026-03-05T09:00``, shown as UTC) as ISO 8601 in UTC."""
    value = (value or "").strip()
    if not value:
        return None
    return value + (":00Z" if len(value) == 16 else "Z") if "Z" not in value and "+" not in value else value


# --- requests ----------------------------------------------------------------------------------


@blp.get("/requests")
@sign_in_required
def my_requests():
    page = services().read_models.requests_of(person_id(), limit=PAGE_SIZE, cursor=request.args.get("cursor") or None)
    named = people(user_id for item in page.items for user_id in (item["requestor_id"], item["target_user_id"]))
    return render_template("requests.html", page=page, people=named)


# The forms of a request's page and the fields each shows a message beside ("_": atop the form).
REQUEST_FORMS = {"decision": ("_", "decision", "reason"), "remove": ("_", "reason"), "cancel": ("_",)}


def placed(errors: dict[str, str], shown: set[str]) -> dict[str, str]:
    """``errors`` with each message whose key the page does not show moved to ``_`` (the page's
    own message, atop it), so that no refusal is lost (a field the form lacks, a form no longer
    offered)."""
    kept: dict[str, str] = {}
    for key, message in errors.items():
        if key in shown:
            kept[key] = message
        else:
            kept["_"] = f"{kept['_']} {message}" if "_" in kept else message
    return kept


def render_details(details: dict[str, Any], *, errors: dict[str, str] | None = None, form=None, status: int = 200):
    user_id = person_id()
    named = people(
        [details["requestor_id"], details["target_user_id"], details.get("cancelled_by"), details.get("revoked_by")]
        + [u for stage in details["stages"] for u in (*stage["approvers"], *stage["alternate_approvers"], stage.get("decided_by"))]
    )
    may_decide = services().read_models.awaits_decision(user_id, details["id"])
    approved_by_me = any(stage.get("decision") == "approved" and stage.get("decided_by") == user_id for stage in details["stages"])
    offered = {
        "decision": may_decide,
        "cancel": details["requestor_id"] == user_id and details["state"] == "pending_approval",
        "remove": approved_by_me and details.get("revoked_by") is None and details["state"] not in CLOSED_WITHOUT_ACCESS,
    }
    shown = {f"{name}-{field}" for name, fields in REQUEST_FORMS.items() if offered[name] for field in fields}
    return (
        render_template(
            "request.html",
            request_details=details,
            people=named,
            may_decide=offered["decision"],
            may_cancel=offered["cancel"],
            may_remove=offered["remove"],
            errors=placed(errors or {}, shown),
            form=form or {},
        ),
        status,
    )


# A request in one of these states gave no access that Remove could take away.
CLOSED_WITHOUT_ACCESS = ("pending_approval", "denied", "expired", "cancelled", "revoked", "access_expired", "removed")


@blp.get("/requests/<request_id>")
@sign_in_required
def request_details(request_id: str):
    return render_details(request_or_404(request_id))


def carry_out(request_id: str, form_errors_key: str, command, schema: ma.Schema | None, data: dict[str, Any], done: str):
    """Checks ``data`` with ``schema``, runs ``command(**args)``, and shows the request again:
    with ``done`` when it worked, with the refusal beside its field when not."""
    details = request_or_404(request_id)
    try:
        args = schema.load(data) if schema is not None else data
    except ma.ValidationError as error:
        problems = {f"{form_errors_key}-{name}": message for name, message in field_errors(error).items()}
        return render_details(details, errors=problems, form=request.form, status=400)
    try:
        receipt = written(command(**args))
    except DomainError as error:
        message, field = refusal(error)
        return render_details(details, errors={f"{form_errors_key}-{field or '_'}": message}, form=request.form, status=status_of(error))
    shown_after(receipt.position, "requests", "pending")  # the request, and whether it still offers a decision
    flash(done, "success")
    return redirect(url_for("portal.request_details", request_id=request_id))


@blp.post("/requests/<request_id>/decision")
@sign_in_required
def decide(request_id: str):
    decision = request.form.get("decision", "")
    data = {"decision": decision, "reason": request.form.get("reason", "").strip() or None}

    def command(**args):
        return services().app.decide(request_id=request_id, approver_id=person_id(), **args)

    done = {"approve": "You approved this request.", "deny": "You denied this request."}.get(decision, "Decision recorded.")
    return carry_out(request_id, "decision", command, DecisionCreateSchema(), data, done)


@blp.post("/requests/<request_id>/cancel")
@sign_in_required
def cancel(request_id: str):
    def command(**args):
        return services().app.cancel_request(request_id=request_id, actor_id=person_id(), **args)

    return carry_out(request_id, "cancel", command, None, {}, "Your request was cancelled.")


@blp.post("/requests/<request_id>/revoke")
@sign_in_required
def remove(request_id: str):
    data = {"reason": request.form.get("reason", "").strip()}

    def command(**args):
        return services().app.revoke_approval(request_id=request_id, approver_id=person_id(), **args)

    return carry_out(request_id, "remove", command, RevocationCreateSchema(), data, "The access was removed.")


# --- approvals ---------------------------------------------------------------------------------


@blp.get("/approvals")
@sign_in_required
def approvals():
    tab = request.args.get("tab", "pending")
    if tab not in APPROVAL_TABS:
        tab = "pending"
    read = services().read_models.pending if tab == "pending" else services().read_models.history
    page = read(person_id(), limit=PAGE_SIZE, cursor=request.args.get("cursor") or None)
    named = people(
        user_id for item in page.items for user_id in (item["requestor_id"], item["target_user_id"], item.get("decided_by"))
    )
    return render_template("approvals.html", tab=tab, page=page, people=named)


# --- my access ---------------------------------------------------------------------------------


@blp.app_template_global()
def may_extend(item: dict[str, Any]) -> bool:
    """Whether My access offers Extend on an assignment: its policy allows extensions, it is held,
    it ends, and no extension is waiting already. (The command decides; this only spares people
    a button that could only be refused.)"""
    return bool(item.get("extension_allowed") and item.get("state") in ACTIVE_STATES and item.get("end") and not item.get("open_request_id"))


@blp.get("/access")
@sign_in_required
def my_access():
    page = services().read_models.assignments_of(person_id(), limit=PAGE_SIZE, cursor=request.args.get("cursor") or None)
    return render_template("access.html", page=page, errors={})


@blp.get("/access/<assignment_id>")
@sign_in_required
def one_access(assignment_id: str):
    """One assignment of mine (the link of the emails about access: 18 to 20), with Extend."""
    item = my_assignment_or_404(assignment_id)
    return render_template("access.html", page=Page(items=[item], next_cursor=None), errors={}, one=True)


def my_assignment_or_404(assignment_id: str) -> dict[str, Any]:
    """The person's own assignment. Someone else's answers the same 404 as none at all: an
    assignment's id is derived from its user and package (``domain.ids``), so telling the two
    apart would tell anyone who has ever held or asked for a package."""
    item = found_soon(assignment_id, "assignments", services().read_models.assignment)
    if item is None or item.get("user_id") != person_id():
        abort(404, description="You have no such access.")
    return item


@blp.post("/access/<assignment_id>/extend")
@sign_in_required
def extend(assignment_id: str):
    item = my_assignment_or_404(assignment_id)
    justification = request.form.get("justification", "").strip() or None
    try:
        receipt = written(
            services().app.request_extension(user_id=person_id(), assignment_id=assignment_id, justification=justification)
        )
    except (refusals.UnknownAssignment, refusals.NotTheAssignee):
        abort(404, description="You have no such access.")
    except DomainError as error:  # shown on the access it is about, beside its Extend
        page = Page(items=[item], next_cursor=None)
        return render_template("access.html", page=page, errors={assignment_id: error.message}, one=True), status_of(error)
    # the page it leads to, and My access (an extension that needed no approval is made at once)
    shown_after(receipt.position, "requests", "assignments")
    flash("Extension requested." if receipt.state == "pending_approval" else "Your access was extended.", "success")
    return redirect(url_for("portal.request_details", request_id=receipt.id))
