"""`VendorHook`: the one small interface every GPU vendor implements.

A vendor module declares how it authenticates (`auth_headers`, or `auth_params`), how to walk its
listing (`fetch_pages`, following the vendor's pagination with `self.request`) and how the raw pages
map to offers (`normalise`, mostly a declarative field mapping through `self.offer(...)`).
HTTP concerns — 5 s timeout, retries with exponential backoff, 429/503 + Retry-After, clear
errors that never carry the key — live here, once.

Vendors without a price API are `StaticCatalogueHook`s: their published price list is a dated
JSON file in `catalogues/`, read instead of an HTTP call.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx
import tenacity
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from pydantic import ValidationError

from gpubroker import gpus, regions
from gpubroker.schema import Offer
from gpubroker_provider.vendors import Vendor

TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0
CATALOGUES = Path(__file__).resolve().parent.parent / "catalogues"


class VendorError(RuntimeError):
    """The vendor could not be asked: unreachable, refused, or answered with an error."""


class PayloadError(ValueError):
    """The vendor answered, but not in its documented format: the whole batch is rejected."""


@dataclass
class Batch:
    """What one sync of one vendor produced: offers, plus what the registry could not vouch for."""

    provider: str
    offers: list[Offer] = field(default_factory=list)
    unknown_gpus: Counter[str] = field(default_factory=Counter)  # vendor GPU names not in the registry
    memory_mismatches: Counter[str] = field(default_factory=Counter)  # "H100: 12.0 GB" the registry denies
    pages: int = 0

    def gpu(self, vendor_name: str) -> gpus.GpuMatch | None:
        """Registry match for a vendor GPU name; None (and counted) when the registry does not know it."""
        try:
            return gpus.resolve(vendor_name)
        except gpus.UnknownGpu:
            self.unknown_gpus[vendor_name] += 1
            return None

    def add(self, offer: Offer) -> None:
        if offer.gpu_count and not gpus.BY_NAME[offer.gpu_model].memory_matches(offer.gpu_memory_gb):
            self.memory_mismatches[f"{offer.gpu_model}: {offer.gpu_memory_gb:g} GB"] += 1
        self.offers.append(offer)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class VendorHook(BaseHook, ABC):
    """Fetch a GPU vendor's listing over HTTP and normalise it to `Offer`s."""

    vendor: ClassVar[Vendor]  # this vendor's row of the vendor table
    # False where offers join several calls that the primary listing alone cannot stand in for
    primary_only: ClassVar[bool] = True
    conn_name_attr = "conn_id"

    def __init__(
        self,
        conn_id: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        super().__init__()
        self.conn_id = conn_id or self.vendor.default_conn_id
        self._base_url = base_url
        self._api_key = api_key
        self._secret: str | None = None  # the key in use, however it was found: redacted from errors
        self.timeout = timeout
        self.max_attempts = max_attempts

    # --- what a vendor module declares -------------------------------------------------------
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Headers carrying the key; Bearer unless the vendor says otherwise."""
        return {"Authorization": f"Bearer {api_key}"}

    def auth_params(self, api_key: str) -> dict[str, str]:
        """Query parameters carrying the key, for vendors that authenticate in the URL."""
        return {}

    @abstractmethod
    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        """Yield each decoded response of the listing, following the vendor's pagination."""

    @abstractmethod
    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        """Add the offers of `pages` to `batch`. KeyError/TypeError/ValueError mean malformed."""

    # --- helpers for vendor modules ----------------------------------------------------------
    def offer(self, match: gpus.GpuMatch, observed_at: datetime, *, region: str, **fields: Any) -> Offer:
        """An Offer with provider, GPU identity, country and continent filled in.

        `country=` (ISO code or name) overrides the region lookup; `gpu_form_factor=` overrides the
        form factor read from the GPU name.
        """
        location = regions.country(fields.pop("country")) if "country" in fields else regions.from_place(region)
        fields.setdefault("gpu_form_factor", match.form_factor)
        return Offer(
            provider=self.vendor.slug,
            gpu_model=match.model.name,
            gpu_vendor=match.model.vendor,
            region=region,
            country=location.country,
            continent=location.continent,
            observed_at=observed_at,
            **fields,
        )

    def pages_from_primary(self, body: Any) -> list[Any]:
        """The pages `normalise` takes, from one saved body of the primary listing call."""
        return [body]

    @staticmethod
    def expect(condition: bool, message: str) -> None:
        """Reject a payload that is not in the documented shape."""
        if not condition:
            raise PayloadError(message)

    # --- the shared machinery ----------------------------------------------------------------
    def _resolve_endpoint(self) -> tuple[str, str | None]:
        base_url, api_key = self._base_url, self._api_key
        if base_url is None or api_key is None:
            try:
                conn = self.get_connection(self.conn_id)
            except AirflowNotFoundException:
                conn = None
            base_url = base_url or (conn.host if conn else None)
            api_key = api_key or (conn.password if conn else None)
        if api_key:
            mask_secret(api_key)
            self._secret = api_key
        elif self.vendor.api_key_required:
            raise VendorError(f"{self.vendor.slug}: no API key; set the password of connection {self.conn_id!r}")
        return (base_url or self.vendor.base_url).rstrip("/"), api_key

    def client(self) -> httpx.Client:
        base_url, api_key = self._resolve_endpoint()
        headers = {"Accept": "application/json", "User-Agent": "gpubroker/0.1"}
        params = {}
        if api_key:
            headers |= self.auth_headers(api_key)
            params = self.auth_params(api_key)
        return httpx.Client(base_url=base_url, headers=headers, params=params, timeout=self.timeout)

    def request(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        """One API call with retries; returns decoded JSON. Errors never carry the API key."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.max_attempts),
            reraise=True,
        )
        try:
            return retrying(self._request_once, client, method, path, **kwargs)
        except _Retryable as error:
            raise VendorError(f"{self.vendor.slug}: {error} (after {self.max_attempts} attempts)") from None

    @staticmethod
    def _wait(state: tenacity.RetryCallState) -> float:
        """Honour the vendor's Retry-After on 429/503, else exponential backoff (0.5, 1, 2 s ...)."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        return tenacity.wait_exponential(multiplier=0.5, max=8)(state)

    def _request_once(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise _Retryable(f"{method} {path} timed out after {self.timeout:g} s") from None
        except httpx.TransportError as error:
            raise _Retryable(f"{method} {path} failed: {type(error).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"{method} {path} -> HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 400:
            detail = response.text[:200]
            if self._secret:
                detail = detail.replace(self._secret, "***")
            raise VendorError(f"{self.vendor.slug}: {method} {path} -> HTTP {response.status_code}: {detail}")
        try:
            return response.json()
        except ValueError:
            raise PayloadError(f"{self.vendor.slug}: {method} {path} did not return JSON") from None

    def fetch_raw(self) -> list[Any]:
        """Every decoded response of the listing, as the vendor sent it."""
        with self.client() as client:
            return list(self.fetch_pages(client))

    def probe(self) -> None:
        """The cheapest call that proves the vendor answers: its listing's first page."""
        with self.client() as client:
            next(iter(self.fetch_pages(client)), None)

    def parse(self, pages: list[Any], observed_at: datetime) -> Batch:
        """Offers from raw pages; anything malformed rejects the whole batch (PayloadError)."""
        batch = Batch(provider=self.vendor.slug, pages=len(pages))
        try:
            self.normalise(pages, observed_at, batch)
        except PayloadError as error:
            raise PayloadError(f"{self.vendor.slug}: malformed payload: {error}") from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError, ValidationError) as error:
            raise PayloadError(f"{self.vendor.slug}: malformed payload: {_describe(error)}") from None
        return batch

    def fetch_batch(self) -> Batch:
        observed_at = datetime.now(timezone.utc)
        return self.parse(self.fetch_raw(), observed_at)


class StaticCatalogueHook(VendorHook):
    """A vendor with no price API: its published price list, dated, in `catalogues/<slug>.json`.

    The file holds {"source": URL, "as_of": "YYYY-MM-DD", "currency": "USD", "price_unit": ...,
    ...vendor rows}; `fetch_pages` yields it.
    """

    price_unit: ClassVar[str]  # how the vendor publishes prices, e.g. "per GPU per hour"

    def catalogue(self, pages: list[Any]) -> dict[str, Any]:
        """The one catalogue object `fetch_pages` yields, its header checked."""
        self.expect(len(pages) == 1 and isinstance(pages[0], dict), "expected one catalogue object")
        self.check_header(pages[0])
        return pages[0]

    def check_header(self, page: dict[str, Any]) -> None:
        """Reject a catalogue that is undated, unsourced, or not in the unit this module converts from."""
        self.expect(str(page["source"]).startswith("https://"), "catalogue source must be an https URL")
        date.fromisoformat(page["as_of"])  # ValueError -> malformed
        self.expect(page["currency"] == "USD", f"expected USD prices, got {page['currency']!r}")
        self.expect(page["price_unit"] == self.price_unit,
                    f"expected prices {self.price_unit!r}, got {page['price_unit']!r}")  # fmt: skip

    def fetch_raw(self) -> list[Any]:
        return list(self.fetch_pages(None))

    def probe(self) -> None:
        self.fetch_raw()

    def fetch_pages(self, client: httpx.Client | None) -> Iterator[Any]:
        yield json.loads((CATALOGUES / f"{self.vendor.slug}.json").read_text())


def is_number(value: Any) -> bool:
    """A JSON number (not a bool, not a numeric string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return f"{type(error).__name__}: {error}"
