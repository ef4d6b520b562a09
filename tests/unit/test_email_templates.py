"""The numbered emails: their jinja2 templates (notifier/templates) rendered through
``notifier.render.Renderer``, and their subjects word for word from the seed's table."""

from __future__ import annotations

import copy
import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from notifier.render import Rendered, Renderer
from notifier.subjects import SUBJECTS, subject

ROOT = Path(__file__).resolve().parents[2]
SEED_TABLE_COPY = ROOT / "tests" / "data" / "seed_email_table.md"
SEED = ROOT.parent / "shared" / "seeds" / "004_58b208b1c487fd34.txt"

NUMBERS = range(1, 21)
ASKING_APPROVERS = (1, 2, 4, 11, 13, 15)
REMINDING_APPROVERS = (3, 5, 12, 14)
APPROVER_REQUEST_EMAILS = ASKING_APPROVERS + REMINDING_APPROVERS
ACCESS_EMAILS = (18, 19, 20)
LINK = "https://portal.example/requests/0c6f?tab=details&view=full"


def sample(number: int, **overrides: dict[str, Any] | Any) -> dict[str, Any]:
    """A full context for email ``number``; a dict override updates that key's dict, any other
    value replaces it."""
    context: dict[str, Any] = {
        "recipient": {"id": "bob", "display_name": "Bob Approver", "email": "bob@contoso.example"},
        "requestor": {
            "id": "rita",
            "display_name": "Rita Requestor",
            "email": "rita@contoso.example",
            "organization": "Contoso Sales",
        },
        "target": {
            "id": "rita",
            "display_name": "Rita Requestor",
            "email": "rita@contoso.example",
            "organization": "Contoso Sales",
        },
        "access_package": {"id": "wiki", "name": "Team wiki"},
        "request": {
            "id": "0c6f",
            "request_type": "user_add",
            "justification": "Quarterly planning",
            "start": "2026-12-01T00:00:00+00:00",
            "end": "2027-02-28T00:00:00+00:00",
            "submitted_at": "2026-11-09T09:00:00+00:00",
            "expires_at": "2026-11-23T09:00:00+00:00",
            "stage": 2 if number in (11, 12, 13, 14, 15, 16, 17) else 1,
            "stage_count": 2 if number in (8, 11, 12, 13, 14, 15, 16, 17) else 1,
            "decided_by": "Amy Approver" if number in (7, 8, 9, 16) else None,
            "reason": "Fits the team's needs" if number in (7, 8, 9, 16) else None,
        },
        "assignment": {"id": "a-1", "end": "2027-02-28T00:00:00+00:00"} if number in ACCESS_EMAILS else None,
        "due": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        "link": LINK,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(context[key], dict):
            context[key] = {**context[key], **value}
        else:
            context[key] = value
    return copy.deepcopy(context)


def bare(number: int) -> dict[str, Any]:
    """Email ``number``'s context with every optional value missing."""
    return sample(
        number,
        requestor={"organization": None},
        target={"organization": None},
        request={
            "justification": None,
            "start": None,
            "end": None,
            "expires_at": None,
            "stage": None,
            "decided_by": None,
            "reason": None,
        },
        assignment={"id": "a-1", "end": None} if number in ACCESS_EMAILS else None,
        due=None,
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def visible_text(document: str) -> str:
    """What a reader of the HTML sees: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"<head>.*?</head>", " ", document, flags=re.DOTALL)
    body = re.sub(r"</?(?:a|strong|em|span)\b[^>]*>", "", body)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def both(rendered: Rendered) -> dict[str, str]:
    return {"text": rendered.text, "html": rendered.html}


# --- every email renders -------------------------------------------------------------------------


@pytest.mark.parametrize("number", NUMBERS)
def test_email_renders_text_and_html_with_subject_in_title_and_heading(renderer, number):
    rendered = renderer.render(number, sample(number))

    escaped = html.escape(rendered.subject, quote=False)
    assert f"<title>{escaped}</title>" in rendered.html
    assert re.search(rf"<h1[^>]*>{re.escape(escaped)}</h1>", rendered.html)
    assert rendered.text.splitlines()[0] == rendered.subject
    assert "Hello Bob Approver," in rendered.text


@pytest.mark.parametrize("number", NUMBERS)
def test_email_renders_when_every_optional_value_is_missing(renderer, number):
    rendered = renderer.render(number, bare(number))

    assert rendered.text.strip() and rendered.html.strip()


@pytest.mark.parametrize("number", NUMBERS)
def test_html_says_every_line_the_text_says(renderer, number):
    rendered = renderer.render(number, sample(number, target={"id": "tom", "display_name": "Tom Target"}))
    seen = visible_text(rendered.html)

    for line in rendered.text.splitlines():
        if re.search(r"\w", line):
            assert " ".join(line.split()) in seen


@pytest.mark.parametrize("number", NUMBERS)
def test_email_carries_its_link(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert LINK in rendered.text
    assert f'href="{html.escape(LINK)}"' in rendered.html


# --- approver emails carry the request details ----------------------------------------------------


@pytest.mark.parametrize("number", APPROVER_REQUEST_EMAILS)
def test_approver_email_carries_request_details_and_link(renderer, number):
    rendered = renderer.render(number, sample(number))

    for kind, body in both(rendered).items():
        shown = body if kind == "text" else visible_text(body)
        assert "Rita Requestor" in shown
        assert "Organization: Contoso Sales" in shown
        assert "Business justification: Quarterly planning" in shown
        assert "Requested start: December 1, 2026" in shown
        assert "Requested end: February 28, 2027" in shown
        assert "Submitted: November 9, 2026 09:00 UTC" in shown
        assert "Expires: November 23, 2026 09:00 UTC" in shown
        assert LINK in shown
        assert "approve or deny the request" in shown


@pytest.mark.parametrize("number", APPROVER_REQUEST_EMAILS)
def test_approver_email_asks_for_a_decision_by_the_due_moment(renderer, number):
    rendered = renderer.render(number, sample(number, due="2026-11-20T17:30:00Z"))

    assert "Please approve or deny the request by November 20, 2026 17:30 UTC." in rendered.text


@pytest.mark.parametrize("number", APPROVER_REQUEST_EMAILS)
def test_approver_email_names_the_user_the_access_is_for_when_not_the_requestor(renderer, number):
    context = sample(number, target={"id": "tom", "display_name": "Tom Target", "organization": "Fabrikam"})

    rendered = renderer.render(number, context)

    assert "Access for: Tom Target (Fabrikam)" in rendered.text
    assert "Access for: Tom Target (Fabrikam)" in visible_text(rendered.html)


@pytest.mark.parametrize("number", (1, 15))
def test_forwarded_email_says_it_was_forwarded_to_an_alternate_approver(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "forwarded to you as an alternate approver" in rendered.text


@pytest.mark.parametrize("number", (4, 5, 13, 14))
def test_email_of_an_escalating_stage_warns_it_will_be_forwarded(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "will be forwarded to alternate approvers" in rendered.text


@pytest.mark.parametrize("number", (2, 3, 11, 12))
def test_email_of_a_stage_without_escalation_does_not_mention_forwarding(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "forwarded" not in rendered.text


@pytest.mark.parametrize("number", REMINDING_APPROVERS)
def test_reminder_says_it_is_a_reminder(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "This is a reminder" in rendered.text


@pytest.mark.parametrize("number", (11, 12, 13, 14, 15, 16, 17))
def test_stage_two_email_names_the_stage(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "at approval stage 2 of 2" in rendered.text


# --- what the other emails say --------------------------------------------------------------------


@pytest.mark.parametrize("number", (6, 17))
def test_expiry_email_tells_approvers_nobody_decided(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "expired" in rendered.text
    assert "nobody approved or denied it in time" in rendered.text
    assert "Expired: November 23, 2026 09:00 UTC" in rendered.text


@pytest.mark.parametrize("number", (7, 8, 16))
def test_approval_email_says_who_approved_and_why(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "has been approved" in rendered.text
    assert "by Amy Approver" in rendered.text
    assert "Approved by: Amy Approver" in rendered.text
    assert "Approver's reason: Fits the team's needs" in rendered.text


@pytest.mark.parametrize("number", (7, 16))
def test_final_approval_says_access_will_be_delivered(renderer, number):
    rendered = renderer.render(number, sample(number))

    assert "the access will now be delivered" in rendered.text
    assert "moves on" not in rendered.text


def test_stage_one_approval_of_a_multi_stage_request_says_it_moves_on(renderer):
    rendered = renderer.render(8, sample(8))

    assert "approved at approval stage 1 of 2 by Amy Approver" in rendered.text
    assert "moves on to the next approval stage" in rendered.text


def test_denial_tells_the_requestor_who_denied_and_why(renderer):
    rendered = renderer.render(9, sample(9, recipient={"id": "rita", "display_name": "Rita Requestor"}))

    assert "Your request for access to Team wiki has been denied by Amy Approver." in rendered.text
    assert "Reason: Fits the team's needs" in rendered.text


def test_expiry_tells_the_requestor_to_submit_again(renderer):
    rendered = renderer.render(10, sample(10))

    assert "Your request for access to Team wiki has expired" in rendered.text
    assert "please submit a new request" in rendered.text


def test_delivery_tells_the_user_they_have_access_until_its_end(renderer):
    rendered = renderer.render(18, sample(18))

    assert "You now have access to Team wiki. Your access ends on February 28, 2027 00:00 UTC." in rendered.text


def test_delivery_without_end_date_says_access_does_not_end(renderer):
    rendered = renderer.render(18, bare(18))

    assert "Your access has no end date." in rendered.text
    assert "End date" not in rendered.text


def test_extension_reminder_asks_for_an_extension_before_the_due_date(renderer):
    rendered = renderer.render(19, sample(19, due="2027-02-21T00:00:00Z"))

    assert rendered.subject == "Extend access for Team wiki by February 21, 2027"
    assert "ends on February 28, 2027 00:00 UTC" in rendered.text
    assert "request an extension by February 21, 2027 00:00 UTC" in rendered.text


def test_end_of_access_tells_the_user_access_has_ended(renderer):
    rendered = renderer.render(20, sample(20))

    assert "Your access to Team wiki has ended." in rendered.text


# --- escaping -------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


def hostile(number: int) -> dict[str, Any]:
    return sample(
        number,
        requestor={"display_name": "Tom & Jerry", "organization": "R&D <Labs>"},
        target={"display_name": "Tom & Jerry", "organization": "R&D <Labs>"},
        access_package={"name": 'Wiki "<b>bold</b>"'},
        request={"justification": SCRIPT, "decided_by": "Amy & Co", "reason": SCRIPT},
    )


@pytest.mark.parametrize("number", NUMBERS)
def test_user_supplied_text_is_escaped_in_html(renderer, number):
    rendered = renderer.render(number, hostile(number))

    assert "<script>" not in rendered.html
    assert "<b>" not in rendered.html
    assert "Tom & Jerry" not in rendered.html
    assert "Wiki &#34;&lt;b&gt;bold&lt;/b&gt;&#34;" in rendered.html
    assert "Tom &amp; Jerry" in rendered.html
    if number not in ACCESS_EMAILS:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html


@pytest.mark.parametrize("number", NUMBERS)
def test_user_supplied_text_is_left_as_is_in_text(renderer, number):
    rendered = renderer.render(number, hostile(number))

    assert "&amp;" not in rendered.text and "&lt;" not in rendered.text
    assert 'Wiki "<b>bold</b>"' in rendered.text
    assert "Tom & Jerry" in rendered.text
    if number not in ACCESS_EMAILS:
        assert SCRIPT in rendered.text


@pytest.mark.parametrize("number", APPROVER_REQUEST_EMAILS)
def test_requestor_organization_is_escaped_in_html(renderer, number):
    rendered = renderer.render(number, hostile(number))

    assert "R&amp;D &lt;Labs&gt;" in rendered.html
    assert "Organization: R&D <Labs>" in rendered.text


# --- missing values -------------------------------------------------------------------------------


@pytest.mark.parametrize("number", APPROVER_REQUEST_EMAILS)
def test_missing_request_details_read_not_given(renderer, number):
    rendered = renderer.render(number, bare(number))

    for kind, body in both(rendered).items():
        shown = body if kind == "text" else visible_text(body)
        for label in ("Organization", "Business justification", "Requested start", "Requested end", "Expires"):
            assert f"{label}: not given" in shown, (kind, label)


@pytest.mark.parametrize("number", (7, 8, 9, 16))
def test_missing_decider_and_reason_read_not_given(renderer, number):
    rendered = renderer.render(number, bare(number))

    assert re.search(r"(Approved|Denied) by: not given", rendered.text)
    assert re.search(r"reason: not given", rendered.text, flags=re.IGNORECASE)
    assert " by ." not in rendered.text and " by None" not in rendered.text


@pytest.mark.parametrize("number", NUMBERS)
def test_no_email_ever_says_none(renderer, number):
    for context in (sample(number), bare(number)):
        rendered = renderer.render(number, context)

        for body in (rendered.subject, rendered.text, visible_text(rendered.html)):
            assert not re.search(r"\bNone\b", body)


# --- subjects -------------------------------------------------------------------------------------


def table_subjects(markdown: str) -> dict[int, str]:
    """The subject column of the seed's "| # | Email subject | ..." rows, emphasis marks removed."""
    subjects = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            subjects[int(cells[0])] = cells[1].replace("*", "")
    return subjects


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if re.match(r"\| \d+ \|", line)]


def test_subjects_match_the_copy_of_the_seed_table():
    assert table_subjects(SEED_TABLE_COPY.read_text(encoding="utf-8")) == SUBJECTS


def test_subjects_match_the_seed():
    if not SEED.exists():
        pytest.skip(f"{SEED} is not there (a clone without ../shared)")
    seed = SEED.read_text(encoding="utf-8")

    assert table_subjects(seed) == SUBJECTS
    assert table_rows(seed) == table_rows(SEED_TABLE_COPY.read_text(encoding="utf-8"))


def test_subject_fills_time_and_date():
    values = {"date": "November 23, 2026", "time": "09:00 UTC", "requestor": "Rita", "access_package": "Wiki"}

    assert subject(4, values) == "Approve or deny the request by 09:00 UTC on November 23, 2026"


def test_subject_fills_requestor_and_access_package():
    values = {"date": "November 23, 2026", "time": "09:00 UTC", "requestor": "Rita", "access_package": "Wiki"}

    assert subject(3, values) == "Reminder: Approve or deny the request by November 23, 2026 for Rita"
    assert subject(7, values) == "Request approved for Rita to Wiki"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1, "Action required: Approve or deny forwarded request by November 23, 2026"),
        (4, "Approve or deny the request by 09:00 UTC on November 23, 2026"),
        (14, "Action required reminder: Approve or deny the request by November 23, 2026 for Rita Requestor"),
        (16, "Request approved for Rita Requestor to Team wiki"),
        (19, "Extend access for Team wiki by November 23, 2026"),
    ],
)
def test_rendered_subject_is_filled_from_the_context(renderer, number, expected):
    assert renderer.render(number, sample(number)).subject == expected


def test_subject_due_given_as_iso_string_with_offset_is_shown_in_utc(renderer):
    rendered = renderer.render(4, sample(4, due="2026-11-23T10:00:00+01:00"))

    assert rendered.subject == "Approve or deny the request by 09:00 UTC on November 23, 2026"
