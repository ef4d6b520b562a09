"""Lists answer ``{items, next_cursor}``, newest first, with ``limit`` and ``cursor``."""

from __future__ import annotations


def walk(api, user: str, path: str, *, limit: int, at: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(user, path + query, at=at)
        assert response.status_code == 200, response.json
        pages.append([item["request_id"] for item in response.json["items"]])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages


def submit_all(api) -> tuple[list[str], int]:
    receipts = [api.submit("requester", f"dual-{n}") for n in range(1, 8)]
    return [r["id"] for r in receipts], receipts[-1]["position"]


def test_own_requests_pages_cover_every_request_once_newest_first(api):
    submitted, last = submit_all(api)

    pages = walk(api, "requester", "/me/requests", limit=3, at=last)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [rid for page in pages for rid in page] == list(reversed(submitted))


def test_pending_pages_cover_every_request_once(api):
    submitted, last = submit_all(api)

    pages = walk(api, "approver-b", "/approvals/pending", limit=2, at=last)

    flat = [rid for page in pages for rid in page]
    assert len(flat) == len(set(flat)) == 7
    assert set(flat) == set(submitted)


def test_list_items_have_the_fields_api_md_lists(api):
    submitted, last = submit_all(api)

    [item] = api.get("requester", "/me/requests?limit=1", at=last).json["items"]

    assert {
        "request_id", "access_package_id", "access_package_name", "requestor_id", "target_user_id",
        "state", "current_stage", "submitted_at", "expires_at",
    } <= set(item)
    assert item["access_package_name"] == "Dual 7"


def test_cursor_with_parts_of_the_wrong_type_is_a_400_not_a_500(api):
    from projections.paging import encode_cursor

    _, last = submit_all(api)
    for path, key in (
        ("/approvals/pending", [5, 7]),
        ("/approvals/history", [5, 7, "x"]),
        ("/me/assignments", [5, {"a": 1}]),
        ("/me/requests", [2**70]),
    ):
        response = api.get("approver-a", f"{path}?cursor={encode_cursor(key)}", at=last)
        assert response.status_code == 400, (path, response.json)
        assert response.json["error"]["code"] == "invalid_cursor"
