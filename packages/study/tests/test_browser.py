"""Browser tests in a real headless Chromium (the system's /usr/bin/chromium driven by Playwright): a
participant completes every step, a reload resumes, invalid input shows its message and saves nothing wrong,
and the administrator pages refuse an anonymous visitor. A screenshot of each step is written to
``test-artifacts/study/`` (or ``$GRAVITY_TEST_ARTIFACTS/study``).

In CI (``CI`` set) a missing browser fails the tests; a local run without Chromium skips them and says why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from gravity_testing import artifacts_dir

from gravity_study import studies

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def artifacts() -> Path:
    out = artifacts_dir("study")
    print(f"\nstudy browser screenshots: {out}")
    return out


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def answer_values(page: Any, label: str) -> None:
    for name in sorted(set(re.findall(r'name="(value_[^"]+)"', page.content()))):
        page.check(f'input[name="{name}"][value="{label}"]')


def test_participant_completes_every_step_resuming_after_reloads(
    page: Any, live_app: Any, make_study: Any, db: Any, scripted_runner: Any, artifacts: Path
) -> None:
    slug, (token,) = make_study(1, slug="browser", books=2)
    url = f"{live_app.url}/p/{token}"
    page.goto(url)
    assert page.url.endswith("/consent")
    shot(page, artifacts, "01-consent")
    page.click("button[type=submit]")  # without ticking the box
    assert "Please tick the box" in page.text_content("#err-consent")
    shot(page, artifacts, "01b-consent-error")
    page.check("#consent")
    page.click("button[type=submit]")

    assert page.url.endswith("/demographics")
    page.check('input[name="age_group"][value="middle-aged"]')
    page.check('input[name="gender"][value="male"]')
    page.click("button[type=submit]")  # no country chosen
    assert "Choose your country" in page.text_content("#err-country")
    assert page.is_checked(
        'input[name="age_group"][value="middle-aged"]'
    )  # what was given is kept in the form
    shot(page, artifacts, "02-demographics-error")
    page.reload()
    assert page.url.endswith("/demographics")  # the invalid submission saved nothing
    page.check('input[name="age_group"][value="middle-aged"]')
    page.check('input[name="gender"][value="male"]')
    page.select_option("#country", "Japan")
    shot(page, artifacts, "02-demographics")
    page.click("button[type=submit]")

    assert page.url.endswith("/genres")
    for genre in ("Romance", "Fiction", "Young Adult", "Science Fiction/Fantasy"):
        page.check(f'input[name="genre"][value="{genre}"]')
    page.click("button[type=submit]")
    assert "Choose exactly 3 categories (you chose 4)" in page.text_content("#err-genre")
    with db.session() as s:
        assert studies.participant_by_token(s, token).genres == []  # type: ignore[union-attr]
    page.uncheck('input[name="genre"][value="Science Fiction/Fantasy"]')
    shot(page, artifacts, "03-genres")
    page.click("button[type=submit]")

    assert page.url.endswith("/personality")
    radios = page.locator('input[type=radio][value="4"]')
    for k in range(radios.count() - 1):  # leave the last item unanswered
        radios.nth(k).check()
    page.click("button[type=submit]")
    assert "1 statement(s) still need an answer" in page.text_content("#form-error")
    radios.nth(radios.count() - 1).check()
    shot(page, artifacts, "04-personality")
    page.click("button[type=submit]")

    assert page.url.endswith("/values")
    page.goto(url)  # coming back with the link resumes at the current step
    assert page.url.endswith("/values")
    answer_values(page, "disagree")
    shot(page, artifacts, "05-values")
    page.click("button[type=submit]")
    assert page.url.endswith("/inferring")
    shot(page, artifacts, "06-inferring")

    page.wait_for_url("**/verify", timeout=60_000)  # the page reloads itself until the stances are inferred
    assert page.locator("fieldset.item").count() == 5
    shot(page, artifacts, "07-verify")
    for name in sorted(set(re.findall(r'name="(verify_[^"]+)"', page.content()))):
        page.check(f'input[name="{name}"][value="yes"]')
    page.click("button[type=submit]")
    assert page.url.endswith("/waiting")
    shot(page, artifacts, "08-waiting")

    with db.session() as s:
        study = studies.study_by_slug(s, slug)
        studies.enqueue(s, study, "train")  # type: ignore[arg-type]
        studies.enqueue(s, study, "generate")  # type: ignore[arg-type]
    scripted_runner.wake()
    page.wait_for_function("() => true")
    for _ in range(100):
        page.goto(url)
        if "/rank/" in page.url:
            break
        page.wait_for_timeout(300)
    assert page.url.endswith("/rank/1")
    shot(page, artifacts, "09-rank-1")
    page.check('input[name="rank_1"][value="1"]')
    page.check('input[name="rank_2"][value="1"]')  # the same rank twice
    page.check('input[name="rank_3"][value="2"]')
    page.click("button[type=submit]")
    assert "Give each description a different rank" in page.text_content("#err-ranks")
    assert "Rate option 1 from 1 to 5." in page.text_content("#err-rate_1")
    shot(page, artifacts, "09b-rank-error")
    page.check('input[name="rank_2"][value="3"]')
    for slot, rating in ((1, 5), (2, 2), (3, 4)):
        page.check(f'input[name="rate_{slot}"][value="{rating}"]')
    page.check('input[name="like_1"][value="0"]')
    page.fill("#comment", "The first one felt written for me.")
    page.click("button[type=submit]")
    page.wait_for_url("**/rank/2")
    page.wait_for_load_state("load")  # a reload racing the navigation finds no attached page
    page.reload()
    assert page.url.endswith("/rank/2")
    for slot, (rank, rating) in enumerate(((3, 1), (1, 5), (2, 3)), start=1):
        page.check(f'input[name="rank_{slot}"][value="{rank}"]')
        page.check(f'input[name="rate_{slot}"][value="{rating}"]')
    shot(page, artifacts, "10-rank-2")
    page.click("button[type=submit]")
    assert page.url.endswith("/done")
    shot(page, artifacts, "11-done")

    with db.session() as s:
        p = studies.participant_by_token(s, token)
        assert (
            p is not None
            and p.country == "Japan"
            and sorted(p.genres) == ["Fiction", "Romance", "Young Adult"]
        )
        first = p.screens[0]
        assert first.ranks[first.display_order[0]] == 1 and first.liked == {first.display_order[0]: [0]}
        assert first.comment == "The first one felt written for me."


def test_administrator_pages_refuse_anonymous_visitors_and_show_results(
    page: Any, live_app: Any, make_study: Any, artifacts: Path, admin_token: str
) -> None:
    make_study(2, slug="admin-browser")
    page.goto(f"{live_app.url}/admin/studies/admin-browser")
    assert page.url.endswith("/admin/login")
    assert "admin-browser" not in page.content()
    shot(page, artifacts, "20-admin-refused")
    page.fill("#password", "not-the-token")
    page.click("button[type=submit]")
    assert "Wrong password." in page.text_content("#err-password")
    page.fill("#password", admin_token)
    page.click("button[type=submit]")
    assert page.url.endswith("/admin")
    page.goto(f"{live_app.url}/admin/studies/admin-browser")
    assert page.locator("a.participant-link").count() == 2
    shot(page, artifacts, "21-admin-study")
    page.click("#results-link")
    assert "Table 4" in page.content()
    shot(page, artifacts, "22-admin-results")
