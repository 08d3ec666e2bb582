"""The one check of a phone region (settings, the identity API and the importer share it)."""

from __future__ import annotations

import pytest

from contactcenter.customers.errors import InvalidIdentityError
from contactcenter.customers.identity import phone_region


def test_a_phone_region_is_a_supported_country_code() -> None:
    assert phone_region(" ru ") == "RU"
    assert phone_region("us") == "US"
    for bad in ("", "XX", "Russia", None, 7):
        with pytest.raises(InvalidIdentityError, match="country"):
            phone_region(bad, "country")
