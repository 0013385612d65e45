"""`VendorHook`: the one small interface every GPU vendor implements.

A vendor module declares where its listing lives (`default_base_url`, `fetch_pages`), how it
authenticates (`auth_headers`) and how one page maps to offers (`normalise_page`). HTTP concerns
(5 s timeout, retries with exponential backoff, 429 + Retry-After) live here, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
import tenacity
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from pydantic import ValidationError

from gpubroker.schema import Offer
from gpubroker_provider.vendors import Vendor

TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0


class VendorError(RuntimeError):
    """The vendor could not be asked: unreachable, refused, or answered with an error."""


class PayloadError(ValueError):
    """The vendor answered, but not in its documented format: the whole batch is rejected."""


@dataclass
class Batch:
    """What one sync of one vendor produced: offers, plus GPU names the registry did not know."""

    provider: str
    offers: list[Offer] = field(default_factory=list)
    unknown_gpus: Counter[str] = field(default_factory=Counter)
    pages: int = 0


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state: tenacity.RetryCallState) -> float:
    """Honour the vendor's Retry-After on 429/503, else exponential backoff (0.5, 1, 2 s ...)."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _Retryable) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
    return tenacity.wait_exponential(multiplier=0.5, max=8)(state)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class VendorHook(BaseHook, ABC):
    """Fetch a GPU vendor's listing over HTTP and normalise it to `Offer`s."""

    vendor: ClassVar[Vendor]  # this vendor's row of the vendor table
    conn_name_attr = "conn_id"

    def __init__(self, conn_id: str | None = None, base_url: str | None = None, api_key: str | None = None):
        super().__init__()
        self.conn_id = conn_id or self.vendor.default_conn_id
        self._base_url = base_url
        self._api_key = api_key

    # --- what a vendor module declares -------------------------------------------------------
    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @abstractmethod
    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        """Yield each decoded page of the vendor's listing, following its pagination."""

    @abstractmethod
    def normalise_page(self, page: Any, observed_at: datetime, batch: Batch) -> None:
        """Append the page's offers to `batch`; KeyError/TypeError/ValueError mean malformed."""

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
        elif self.vendor.api_key_required:
            raise VendorError(f"{self.vendor.slug}: no API key; set the password of connection {self.conn_id!r}")
        return (base_url or self.vendor.base_url).rstrip("/"), api_key

    def client(self) -> httpx.Client:
        base_url, api_key = self._resolve_endpoint()
        headers = {"Accept": "application/json", "User-Agent": "gpubroker/0.1"}
        if api_key:
            headers |= self.auth_headers(api_key)
        return httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT_SECONDS)

    def request(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        """One API call with retries; returns decoded JSON. Errors never carry the API key."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=_wait,
            stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
            reraise=True,
        )
        try:
            return retrying(self._request_once, client, method, path, **kwargs)
        except _Retryable as error:
            raise VendorError(f"{self.vendor.slug}: {error} (after {MAX_ATTEMPTS} attempts)") from None

    def _request_once(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise _Retryable(f"{method} {path} timed out after {TIMEOUT_SECONDS:g} s") from None
        except httpx.TransportError as error:
            raise _Retryable(f"{method} {path} failed: {type(error).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"{method} {path} -> HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 400:
            raise VendorError(f"{self.vendor.slug}: {method} {path} -> HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise PayloadError(f"{self.vendor.slug}: {method} {path} did not return JSON") from None

    def fetch_raw(self) -> list[Any]:
        """Every decoded page of the listing, as the vendor sent it."""
        with self.client() as client:
            return list(self.fetch_pages(client))

    def normalise(self, pages: list[Any], observed_at: datetime) -> Batch:
        """Offers from raw pages; a malformed page rejects the whole batch (PayloadError)."""
        batch = Batch(provider=self.vendor.slug)
        for number, page in enumerate(pages, 1):
            batch.pages = number
            try:
                self.normalise_page(page, observed_at, batch)
            except PayloadError as error:
                raise PayloadError(f"{self.vendor.slug}: malformed page {number}: {error}") from None
            except (KeyError, TypeError, ValueError, ValidationError) as error:
                raise PayloadError(f"{self.vendor.slug}: malformed page {number}: {_describe(error)}") from None
        return batch

    def fetch_batch(self) -> Batch:
        observed_at = datetime.now(timezone.utc)
        return self.normalise(self.fetch_raw(), observed_at)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)
