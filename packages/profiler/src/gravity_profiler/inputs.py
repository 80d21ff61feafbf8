"""One user's profiling input, and its round trip through BuildProfileRequest (the service's queue format)."""

from __future__ import annotations

from dataclasses import dataclass

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import (
    AGE_GROUPS,
    BookRecord,
    DemographicsRecord,
    ReviewRecord,
    age_group,
    normalize_country,
    normalize_gender,
)
from gravity_core.errors import InvalidInput
from gravity_core.skips import RecordError


@dataclass
class UserInput:
    user_id: str
    # Most recent first; only reviews of books in ``books``.
    reviews: list[ReviewRecord]
    books: dict[str, BookRecord]
    demographics: DemographicsRecord | None = None

    def to_request(self, cohort_id: str = "", cohort_size: int = 0) -> profile_pb2.BuildProfileRequest:
        d = self.demographics
        demographics = common_pb2.Demographics()
        if d is not None:
            demographics.age = d.age or 0
            for field, value in (("age_group", d.age_group), ("gender", d.gender), ("country", d.country)):
                if value:
                    getattr(demographics, field).CopyFrom(
                        common_pb2.DemographicField(
                            value=value, provenance=common_pb2.PROVENANCE_GIVEN, confidence=1.0
                        )
                    )
        return profile_pb2.BuildProfileRequest(
            user_id=self.user_id,
            reviews=[r.to_proto() for r in self.reviews],
            books=[b.to_proto() for b in self.books.values()],
            demographics=demographics,
            cohort_id=cohort_id,
            cohort_size=cohort_size,
        )


def sort_recent_first(reviews: list[ReviewRecord]) -> list[ReviewRecord]:
    return sorted(reviews, key=lambda r: (-r.timestamp_ms, r.parent_asin))


def demographics_from_proto(user_id: str, d: common_pb2.Demographics) -> DemographicsRecord:
    """Known values from a request; ESTIMATED fields from a client are treated as unknown and re-estimated."""

    def given(f: common_pb2.DemographicField) -> str:
        return f.value.strip() if f.provenance != common_pb2.PROVENANCE_ESTIMATED else ""

    try:
        gender = normalize_gender(given(d.gender))
    except RecordError as exc:
        raise InvalidInput("demographics.gender.value", exc.detail) from None
    group = given(d.age_group).lower()
    if d.age < 0 or d.age >= 120:
        raise InvalidInput("demographics.age", f"{d.age} is out of range")
    if d.age:
        group = age_group(d.age)
    elif group and group not in AGE_GROUPS:
        raise InvalidInput("demographics.age_group.value", f"{group!r} is not one of {', '.join(AGE_GROUPS)}")
    return DemographicsRecord(user_id, d.age or None, group, gender, normalize_country(given(d.country)))


def from_request(request: profile_pb2.BuildProfileRequest) -> tuple[UserInput, list[tuple[int, str, str]]]:
    """The user input in a request, and the reviews left out as (index, reason, detail).

    Reviews of another user, or of a book neither in ``request.books`` nor known otherwise, are left out;
    the caller decides whether what remains is enough. Invalid requests raise InvalidInput naming the field.
    """
    user_id = request.user_id.strip()
    if not user_id:
        raise InvalidInput("user_id", "is required")
    books: dict[str, BookRecord] = {}
    for i, book in enumerate(request.books):
        if not book.parent_asin.strip():
            raise InvalidInput(f"books[{i}].parent_asin", "is required")
        books[book.parent_asin] = BookRecord.from_proto(book)
    reviews: list[ReviewRecord] = []
    rejected: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    for i, msg in enumerate(request.reviews):
        review = ReviewRecord.from_proto(msg)
        if review.user_id and review.user_id != user_id:
            raise InvalidInput(f"reviews[{i}].user_id", f"{review.user_id!r} is not {user_id!r}")
        if not review.parent_asin.strip():
            raise InvalidInput(f"reviews[{i}].parent_asin", "is required")
        if not review.text.strip():
            rejected.append((i, "empty_text", "review text is empty"))
            continue
        if not 0.0 <= review.rating <= 5.0:
            raise InvalidInput(f"reviews[{i}].rating", f"{review.rating} is outside 0..5")
        review.user_id = user_id
        if review.parent_asin in seen:
            previous = reviews[seen[review.parent_asin]]
            rejected.append((i, "duplicate_review", f"a second review of {review.parent_asin}"))
            if review.timestamp_ms > previous.timestamp_ms:
                reviews[seen[review.parent_asin]] = review
            continue
        seen[review.parent_asin] = len(reviews)
        reviews.append(review)
    demographics = demographics_from_proto(user_id, request.demographics)
    return UserInput(user_id, sort_recent_first(reviews), books, demographics), rejected
