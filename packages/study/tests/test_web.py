"""The web app under a real uvicorn server on 127.0.0.1 (HTTP with httpx): a participant goes through every
page, the background jobs run in the app's worker thread, CSRF and administrator access are enforced,
everything rendered is escaped, and the results download as CSV and JSON."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from gravity_study import studies
from gravity_study.instruments import ipip_items


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def post(client: httpx.Client, url: str, data: dict[str, Any]) -> httpx.Response:
    page = client.get(url)
    return client.post(url, data={**data, "csrf": csrf(page.text)})


def wait_for(client: httpx.Client, url: str, text: str, timeout_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        page = client.get(url, follow_redirects=True)
        if text in page.text:
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared at {url}; last page:\n{page.text[:2000]}")
        time.sleep(0.3)


@pytest.fixture
def admin(live_app: Any, admin_token: str) -> httpx.Client:
    client = httpx.Client(base_url=live_app.url)
    login = post(client, "/admin/login", {"password": admin_token})
    assert login.status_code == 303 and login.headers["location"] == "/admin"
    return client


def test_participant_flow_over_http_resumes_and_reaches_the_results(
    live_app: Any, admin: httpx.Client, db: Any
) -> None:
    created = post(
        admin,
        "/admin",
        {
            "name": "Web study",
            "slug": "web",
            "baselines": "tri-agent",
            "books_per_participant": "2",
            "countries": "USA,Brazil",
        },
    )
    assert created.status_code == 303 and created.headers["location"] == "/admin/studies/web"
    added = post(admin, "/admin/studies/web", {"action": "add", "count": "1", "label": "<script>x</script>"})
    assert added.status_code == 303
    page = admin.get("/admin/studies/web").text
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    link = re.search(r'class="participant-link">([^<]+)<', page).group(1)  # type: ignore[union-attr]
    token = link.rsplit("/", 1)[-1]

    me = httpx.Client(base_url=live_app.url)
    base = f"/p/{token}"
    assert me.get(base).headers["location"] == f"{base}/consent"
    assert me.get(f"{base}/values").headers["location"] == f"{base}/consent"  # no skipping ahead
    refused = me.post(f"{base}/consent", data={"consent": "yes", "csrf": "forged"})
    assert refused.status_code == 403 and "expired" in refused.text
    assert post(me, f"{base}/consent", {"consent": "yes"}).headers["location"] == f"{base}/demographics"
    bad = post(me, f"{base}/demographics", {"age_group": "young", "gender": "female", "country": "Mars"})
    assert bad.status_code == 400 and "Choose your country from the list (USA, Brazil)." in bad.text
    assert me.get(base).headers["location"] == f"{base}/demographics"  # nothing saved: still here
    post(
        me,
        f"{base}/demographics",
        {"age_group": "senior", "gender": "prefer-not-to-say", "country": "Brazil"},
    )
    post(me, f"{base}/genres", {"genre": ["Romance", "Fiction", "Business / Economics / Finance"]})
    post(me, f"{base}/personality", {f"ipip_{i.id}": "4" for i in ipip_items()})
    values_page = me.get(f"{base}/values").text
    names = sorted(set(re.findall(r'name="(value_[^"]+)"', values_page)))
    assert len(names) == 10
    assert post(me, f"{base}/values", {n: "agree" for n in names}).headers["location"] == f"{base}/inferring"

    verify = wait_for(
        me, base, "Do you agree with this annotation?"
    )  # the worker thread inferred the stances
    fields = sorted(set(re.findall(r'name="(verify_[^"]+)"', verify.text)))
    assert len(fields) == 5
    assert post(me, f"{base}/verify", {f: "yes" for f in fields}).headers["location"] == f"{base}/waiting"
    wait_for(admin, "/admin/studies/web", "1 of 1 participant(s) have a profile")

    post(admin, "/admin/studies/web", {"action": "train"})
    wait_for(admin, "/admin/studies/web", "scripted adapter")
    post(admin, "/admin/studies/web", {"action": "generate"})
    rank = wait_for(me, base, "Book 1 of 2")
    assert "&lt;b&gt;two&lt;/b&gt;" in rank.text  # generated text is escaped too
    for n in (1, 2):
        page = me.get(f"{base}/rank/{n}")
        assert page.status_code == 200
        sent = me.post(
            f"{base}/rank/{n}",
            data={
                "csrf": csrf(page.text),
                "rank_1": "1",
                "rank_2": "2",
                "rank_3": "3",
                "rate_1": "5",
                "rate_2": "3",
                "rate_3": "1",
                "like_1": "0",
            },
        )
        assert sent.status_code == 303
    assert "finished the study" in me.get(base, follow_redirects=True).text

    post(admin, "/admin/studies/web", {"action": "judge"})
    wait_for(admin, "/admin/studies/web/results", "identical top-1")
    results = admin.get("/admin/studies/web/results").text
    assert "Table 4" in results and "GRAVITY" in results and "TriAgent" in results and "Brazil" in results
    data = admin.get("/admin/studies/web/results.json").json()
    assert data["overall"]["screens"] == 2 and data["overall"]["agreement"]["screens"] == 2
    assert data["raw"][0]["screens"][0]["display_order"]
    csv_text = admin.get("/admin/studies/web/results.csv").text
    assert csv_text.startswith("group,section,method,metric,value,ci_low,ci_high,n")
    with db.session() as s:
        p = studies.participant_by_token(s, token)
        assert p is not None and p.gender == "" and p.country == "Brazil"


def test_administrator_pages_refuse_anonymous_visitors(
    live_app: Any, make_study: Any, admin_token: str
) -> None:
    make_study(1, slug="closed")
    anon = httpx.Client(base_url=live_app.url)
    for url in ("/admin", "/admin/studies/closed", "/admin/studies/closed/results"):
        response = anon.get(url)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    assert anon.get("/admin/studies/closed/results.csv").status_code == 401
    wrong = post(anon, "/admin/login", {"password": "guess"})
    assert wrong.status_code == 401 and "Wrong password." in wrong.text
    assert anon.get("/admin").status_code == 303
    forged = anon.get("/admin", cookies={"gravity_study_admin": "1700000000.deadbeef"})
    assert forged.status_code == 303
    bearer = anon.get(
        "/admin/studies/closed/results.json", headers={"authorization": f"Bearer {admin_token}"}
    )
    assert bearer.status_code == 200 and bearer.json()["study"]["slug"] == "closed"
    # the admin's CSRF-protected forms refuse a post without the token, even from a signed-in admin
    me = httpx.Client(base_url=live_app.url)
    post(me, "/admin/login", {"password": admin_token})
    assert me.post("/admin/studies/closed", data={"action": "train"}).status_code == 403


def test_unknown_links_and_security_headers(live_app: Any) -> None:
    anon = httpx.Client(base_url=live_app.url)
    response = anon.get("/p/not-a-real-token")
    assert response.status_code == 404 and "This link is not valid" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
