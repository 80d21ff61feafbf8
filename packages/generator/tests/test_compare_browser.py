"""The compare page in a real headless Chromium (the system's /usr/bin/chromium driven by Playwright) on the
real generator service: pick a reader and a book, every method's description renders next to the profile,
one method is regenerated; the profile is escaped and unknown traits are left out; with a token configured
the page asks for it once. Screenshots go to ``test-artifacts/generator/`` (or
``$GRAVITY_TEST_ARTIFACTS/generator``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gravity_testing import artifacts_dir
from pydantic import SecretStr

from gravity.v1 import profile_pb2
from gravity_core.web.server import HttpServer
from gravity_generator.web.app import create_web_app

pytestmark = [pytest.mark.browser, pytest.mark.model]

TOKEN = "compare-token-7d2f"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    out = artifacts_dir("generator")
    print(f"\ncompare page screenshots: {out}")
    return out


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def wait_until_generated(page: Any, timeout_s: float = 600) -> None:
    """The page reloads itself (meta refresh, no script) while descriptions are pending; the locator is
    re-evaluated across those reloads until the page says none is left."""
    page.locator('#methods[data-pending="0"]').wait_for(state="attached", timeout=timeout_s * 1000)


def test_every_method_side_by_side_and_regenerate_one(
    page: Any, generator, target_book, catalog, artifacts: Path
) -> None:
    profile, book = target_book
    base = generator.service.http.url
    page.goto(f"{base}/")
    assert page.url.endswith("/compare")
    page.select_option("#user", profile.user_id)
    page.click("#show-books")
    assert page.text_content("#profile h2").strip().endswith(profile.user_id)
    assert profile.demographics.country.value in page.text_content("#profile")
    shot(page, artifacts, "01-reader")

    page.select_option("#book", book.parent_asin)
    page.click("#compare")
    wait_until_generated(page)
    statuses = {m.name: m for m in generator.service.app.engine.methods()}
    cards = page.locator("article.method")
    assert cards.count() == len(statuses)
    for name, status in statuses.items():
        card = page.locator(f"#method-{name}")
        assert card.get_attribute("data-state") == ("done" if status.available else "unavailable"), name
        assert card.locator(".text").text_content().strip(), name
    assert page.text_content("#method-original .text").strip() == book.description.strip()
    assert "gravity-test" in page.text_content("#method-gravity .meta")
    assert page.locator("#method-original button").count() == 0  # nothing to sample again
    assert page.text_content("#book-info h2").strip() == (book.title or book.parent_asin)
    shot(page, artifacts, "02-every-method")

    before = page.text_content("#method-lamp .meta")
    assert "greedy" in before
    page.click("#regenerate-lamp")
    assert page.url.endswith("#method-lamp")
    wait_until_generated(page)
    meta = page.text_content("#method-lamp .meta")
    assert "sampled: temperature 0.8" in meta and "round 2" in meta
    assert page.get_attribute("#method-lamp", "data-state") == "done"
    # the other methods kept their descriptions
    assert "round" not in page.text_content("#method-gravity .meta")
    shot(page, artifacts, "03-regenerated-lamp")

    # any catalog book by parent_asin; an unknown one is reported on the page
    page.fill("#asin", "0000000000")
    page.click("#compare")
    assert "is not in the catalog" in page.text_content("#err-book")
    shot(page, artifacts, "04-unknown-book")


def test_profile_is_escaped_and_unknown_traits_left_out(
    page: Any, generator, profiles, artifacts: Path
) -> None:
    tricky = profile_pb2.UserProfile()
    tricky.CopyFrom(profiles[3])
    tricky.user_id = "reader-<b>bold</b>"
    tricky.value_summary = 'You value <script>alert("x")</script> & honesty.'
    del tricky.personality.traits[:]
    tricky.personality.traits.add(
        trait=profile_pb2.TRAIT_OPENNESS, level=profile_pb2.TRAIT_LEVEL_HIGH, score=0.8
    )
    tricky.personality.traits.add(trait=profile_pb2.TRAIT_NEUROTICISM, level=profile_pb2.TRAIT_LEVEL_UNKNOWN)
    generator.service.app.profiles.put(tricky)
    page.goto(f"{generator.service.http.url}/compare")
    page.select_option("#user", tricky.user_id)
    page.click("#show-books")
    assert page.text_content("#value-summary") == tricky.value_summary
    assert page.locator("#profile script, #profile b").count() == 0
    traits = page.text_content("#traits")
    assert "High Openness" in traits and "Neuroticism" not in traits
    shot(page, artifacts, "05-escaped-profile")


@pytest.fixture
def token_server(generator) -> Iterator[str]:
    settings = generator.service.settings
    grpc_settings = settings.grpc.model_copy(update={"auth_token": SecretStr(TOKEN)})
    web = create_web_app(generator.service.serving, settings.model_copy(update={"grpc": grpc_settings}))
    server = HttpServer(web.asgi, "generator-token", "127.0.0.1", 0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        web.close()


def test_with_a_token_the_page_asks_for_it_once(
    page: Any, token_server: str, profiles, artifacts: Path
) -> None:
    page.goto(f"{token_server}/compare?user={profiles[0].user_id}")
    assert page.locator("#profile").count() == 0 and page.locator("#token").count() == 1
    page.fill("#token", "not-the-token")
    page.click("#sign-in")
    assert "Wrong token." in page.text_content("#login-error")
    shot(page, artifacts, "06-token-refused")
    page.fill("#token", TOKEN)
    page.click("#sign-in")
    assert page.url.endswith("/compare") and page.locator("#user").count() == 1
    cookie = next(c for c in page.context.cookies() if c["name"] == "gravity_generator_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    page.goto(f"{token_server}/compare?user={profiles[0].user_id}")
    assert page.locator("#profile").count() == 1
    shot(page, artifacts, "07-signed-in")
