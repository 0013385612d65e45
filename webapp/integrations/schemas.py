"""What the integrations API takes and answers (the OpenAPI document is made from these). No answer
carries a vendor key: only `IntegrationIn` takes one, and nothing echoes it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ninja import Field, Schema

from gpubroker import search
from gpubroker.integrations import Status
from gpubroker.vendors import VENDORS
from offers.schemas import OfferOut, OfferPage

# The vendors whose API takes a key: the only ones an integration can be made for.
KeyedProvider = StrEnum("KeyedProvider", {slug: slug for slug in sorted(VENDORS) if VENDORS[slug].api_key_required})


class IntegrationIn(Schema):
    provider: KeyedProvider = Field(description="the vendor's slug (a vendor whose API takes a key)")
    api_key: str = Field(min_length=8, max_length=512, pattern=r"^[\x21-\x7e]+$",
                         description="your key for the vendor's API (printable ASCII, no spaces); kept in Vault, "
                                     "never shown again")  # fmt: skip
    api_url: search.text(2000) | None = Field(None, description="the vendor API's base URL, when not the vendor's own "
                                                                "(http or https; no user name, password, query or fragment)")  # fmt: skip


class IntegrationStatus(Schema):
    provider: str
    status: Status = Field(description="ok: the vendor accepted the key; invalid: it refused the key, or the URL is "
                                       "not the vendor's API; unreachable: no answer, a vendor error or its circuit open")  # fmt: skip
    message: str = Field(description="what the vendor answered, in words (never the key)")
    last_checked: datetime


class IntegrationOut(IntegrationStatus):
    api_url: str | None = Field(description="null: the vendor's own API")
    created_at: datetime


class IntegrationRefused(IntegrationStatus):
    detail: str = Field(description="why nothing was stored")


class IntegrationList(Schema):
    items: list[IntegrationOut] = Field(description="by provider")


class OwnOfferOut(OfferOut):
    owned: bool = Field(False, description="true: landed with your own integration, seen by no one else")


class OwnOfferPage(OfferPage):
    items: list[OwnOfferOut]
