"""`VendorHook`: the one small interface every GPU vendor implements.

A vendor module declares how it authenticates (`auth_headers`, or `auth_params`), how to walk its
listing (`fetch_pages`, following the vendor's pagination with `self.request`) and how the raw pages
map to offers (`normalise`, mostly a declarative field mapping through `self.offer(...)`).
HTTP concerns — 5 s timeout, retries with exponential backoff, 429/503 + Retry-After, clear
errors that never carry the key, at most 50 requests in flight per vendor (`Breaker.request`) —
live here, once.

Parsing is item by item, here, once: `items(pages)` checks each page's envelope and yields the
listing's items; `item_offers(item, ...)` maps ONE item to its offers. An item that cannot be parsed
is dropped with a counted reason (`Batch.dropped`), an item that is not a GPU offer by design
(CPU-only plan, storage SKU, another product family) is counted as skipped (`Batch.skipped`), and
neither sinks the batch. A batch is refused (`PayloadError`) only for a wrong envelope, or when the
dropped share of the items that were not skipped passes the hook's `drop_threshold`.

Vendors without a price API are `StaticCatalogueHook`s: their published price list is a dated
JSON file in `catalogues/`, read instead of an HTTP call.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import httpx
import tenacity
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from pydantic import ValidationError

from gpubroker import gpus, regions
from gpubroker.breaker import Breaker, TooManyCalls
from gpubroker.schema import Availability, Offer
from gpubroker.vendors import Vendor

TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0
DROP_THRESHOLD = 0.5  # refuse a batch when more than half of its (not skipped) items are dropped
CATALOGUES = Path(__file__).resolve().parent.parent / "catalogues"


class VendorError(RuntimeError):
    """The vendor could not be asked: unreachable, refused, or answered with an error."""


class PayloadError(ValueError):
    """The vendor answered, but not in its documented format: the whole batch is rejected."""


class TooManyDropped(PayloadError):
    """More of the batch's items were dropped than the vendor's drop threshold allows."""


class NotAnOffer(Exception):
    """An item that is not a GPU offer by design (CPU-only plan, storage SKU, ...): skipped, counted."""


def skip(reason: str) -> NoReturn:
    """Leave the current item out as not a GPU offer, e.g. `skip("CPU-only plan")`."""
    raise NotAnOffer(reason)


# What a broken item raises: it is dropped with the error as its reason, the batch goes on.
ITEM_ERRORS = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


@dataclass(frozen=True)
class Variant:
    """A documented shape of a vendor's answer that the hook accepts besides its main recording."""

    name: str  # fixture `replay/recordings/<slug>/variant-<name>.json`
    route: str  # the recorded payload it stands in for, e.g. "bundles.json"
    shape: str  # what differs, in one line


@dataclass
class Batch:
    """What one sync of one vendor produced: offers, plus what the registry could not vouch for,
    what was dropped as unparseable and what was skipped as not a GPU offer (each by reason)."""

    provider: str
    offers: list[Offer] = field(default_factory=list)
    unknown_gpus: Counter[str] = field(default_factory=Counter)  # vendor GPU names not in the registry
    memory_mismatches: Counter[str] = field(default_factory=Counter)  # "H100: 12.0 GB" the registry denies
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> items that could not be parsed
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> items that are not GPU offers
    items: int = 0  # listing items read
    pages: int = 0
    _pending: list[Offer] | None = field(default=None, repr=False)  # the current item's offers
    _pending_unknown: list[str] = field(default_factory=list, repr=False)  # ... and its unknown GPUs
    _offer_ids: set[str] = field(default_factory=set, repr=False)

    def gpu(self, vendor_name: str) -> gpus.GpuMatch | None:
        """Registry match for a vendor GPU name; None (and counted) when the registry does not know it."""
        try:
            return gpus.resolve(vendor_name)
        except gpus.UnknownGpu:
            self.unknown(vendor_name)
            return None

    def unknown(self, vendor_name: str) -> None:
        """Count a GPU (or GPU family) the item names that GPUBroker cannot map: its offers are not landed."""
        if self._pending is None:
            self.unknown_gpus[vendor_name] += 1
        else:
            self._pending_unknown.append(vendor_name)

    @property
    def pending_unknown(self) -> bool:
        """Whether the current item named a GPU the registry does not know (counted as such, not dropped)."""
        return bool(self._pending_unknown)

    def add(self, offer: Offer) -> None:
        if self._pending is None:
            self._land([offer])
        else:
            self._pending.append(offer)  # lands when its whole item has been parsed

    @contextmanager
    def item(self) -> Iterator[None]:
        """One listing item: its offers land together, or it is dropped (or skipped) and counted."""
        self.items += 1
        self._pending, self._pending_unknown = [], []
        try:
            yield
            self._land(self._pending)
            self.unknown_gpus.update(self._pending_unknown)
        except NotAnOffer as reason:
            self.skipped[str(reason)] += 1
        except ITEM_ERRORS as error:
            self.dropped[_describe(error)] += 1
        finally:
            self._pending = None

    def each(self, items: Iterable[Any], parse: Callable[[Any], Any]) -> list[Any]:
        """`parse(item)` for each item, item by item: what parses, in order; the rest dropped or skipped.
        Offers assembled afterwards from several items are then added each in its own `item()` too,
        so one that does not validate is dropped alone (and counted among the items)."""
        parsed = []
        for item in items:
            with self.item():
                parsed.append(parse(item))
        return parsed

    @property
    def dropped_share(self) -> float:
        """Dropped items over the items that were not skipped as not GPU offers (0 when none)."""
        considered = self.items - self.skipped.total()
        return self.dropped.total() / considered if considered else 0.0

    def _land(self, offers: list[Offer]) -> None:
        ids = [o.offer_id for o in offers]
        if twice := next((i for i in ids if i in self._offer_ids or ids.count(i) > 1), None):
            raise ValueError("offer_id listed twice")
        for offer in offers:
            if not gpus.BY_NAME[offer.gpu_model].memory_matches(offer.gpu_memory_gb):
                self.memory_mismatches[f"{offer.gpu_model}: {offer.gpu_memory_gb:g} GB"] += 1
        self._offer_ids.update(ids)
        self.offers.extend(offers)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    """The vendor's Retry-After in seconds (RFC 9110: delay-seconds, or an HTTP date, 0 once past).
    None when absent or no time to wait (negative, NaN, infinite, unparseable): the backoff applies."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError, IndexError):
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class VendorHook(BaseHook, ABC):
    """Fetch a GPU vendor's listing over HTTP and normalise it to `Offer`s."""

    vendor: ClassVar[Vendor]  # this vendor's row of the vendor table
    # False where offers join several calls that the primary listing alone cannot stand in for
    primary_only: ClassVar[bool] = True
    # refuse the batch when a larger share of its (not skipped) items is dropped as unparseable
    drop_threshold: ClassVar[float] = DROP_THRESHOLD
    variants: ClassVar[tuple[Variant, ...]] = ()  # accepted shapes besides the main recording
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
    def items(self, pages: list[Any]) -> Iterator[Any]:
        """Each item of the listing, after checking each page's envelope (an error here refuses the batch).
        Hooks yielding (context, item) tuples put the item last."""

    def item_offers(self, item: Any, observed_at: datetime, batch: Batch) -> Iterable[Offer]:
        """The offers of ONE item. A KeyError/TypeError/ValueError drops this item only (counted by
        reason); `skip(reason)` leaves out an item that is not a GPU offer."""
        raise NotImplementedError(f"{type(self).__name__} maps no single item: it overrides normalise")

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        """Add the offers of every item of `pages` to `batch`, item by item. Vendors whose offers join
        several listings override this, reading each listing's items through `batch.each`."""
        for item in self.items(pages):
            with batch.item():
                offers = list(self.item_offers(item, observed_at, batch))
                if not offers and not batch.pending_unknown:  # nothing landed, nothing said why: a drop
                    raise ValueError("the item gave no offer (no price, region or GPU count it could use)")
                for offer in offers:
                    batch.add(offer)

    # --- helpers for vendor modules ----------------------------------------------------------
    def offer(self, match: gpus.GpuMatch, observed_at: datetime, *, region: str, **fields: Any) -> Offer:
        """An Offer with provider, GPU identity, country and continent filled in.

        `country=` (ISO code or name) overrides the region lookup; `gpu_form_factor=` overrides the
        form factor read from the GPU name. `gpu_memory_gb=None` (the vendor did not say) is filled
        from the registry when the model comes in one memory size, and marked inferred.
        """
        location = regions.country(fields.pop("country")) if "country" in fields else regions.from_place(region)
        fields.setdefault("gpu_form_factor", match.form_factor)
        if fields.get("gpu_memory_gb") is None:
            fields["gpu_memory_gb"] = registry_memory(match)
            fields["inferred"] = (*fields.get("inferred", ()), "gpu_memory_gb")
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

    def listed(self, pages: list[Any], *path: str) -> Iterator[Any]:
        """Every item of each page's list at `path`, e.g. `listed(pages, "data", "instance_types")` for
        {"data": {"instance_types": [...]}}; a page without that list refuses the batch."""
        shape = "[...]"
        for key in reversed(path):
            shape = f'{{"{key}": {shape}}}'
        for page in pages:
            rows = page
            for key in path:
                rows = rows.get(key) if isinstance(rows, dict) else None
            self.expect(isinstance(rows, list), f"expected {shape}")
            yield from rows

    def grouped(self, groups: Iterable[Any], key: str, what: str) -> Iterator[tuple[dict[str, Any], Any]]:
        """(group, member) for every member of each group's `key` list, e.g. a GPU type's offers; a group
        without one refuses the batch (`what` names the group in that error)."""
        for group in groups:
            self.expect(isinstance(group, dict) and isinstance(group.get(key), list), f"{what} without a {key} list")
            yield from ((group, member) for member in group[key])

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
        """One API call with retries; returns decoded JSON (`decode=` another reader of the response,
        e.g. a page's text). Errors never carry the API key."""
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

    def _request_once(self, client: httpx.Client, method: str, path: str, *,
                      decode: Callable[[httpx.Response], Any] | None = None, **kwargs: Any) -> Any:  # fmt: skip
        try:
            with Breaker(self.vendor.slug).request():  # at most 50 in flight per vendor; its answer time kept
                response = client.request(method, path, **kwargs)
        except TooManyCalls as busy:
            raise _Retryable(f"{method} {path} not sent: {busy}") from None
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
        if decode is not None:
            return decode(response)
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
        """Offers from raw pages, item by item. A wrong envelope refuses the whole batch (PayloadError),
        and so does a dropped share above `drop_threshold` (TooManyDropped)."""
        batch = Batch(provider=self.vendor.slug, pages=len(pages))
        try:
            self.normalise(pages, observed_at, batch)
        except ITEM_ERRORS as error:
            raise PayloadError(f"{self.vendor.slug}: malformed payload: {_describe(error)}") from None
        if batch.dropped_share > self.drop_threshold:
            reasons = "; ".join(f"{reason} ({n})" for reason, n in batch.dropped.most_common(3))
            raise TooManyDropped(
                f"{self.vendor.slug}: {batch.dropped.total()} of {batch.items - batch.skipped.total()} items dropped, "
                f"more than the {self.drop_threshold:.0%} this vendor allows: {reasons}"
            )
        return batch

    def observed_at(self, pages: list[Any], fetched_at: datetime) -> datetime:
        """When the prices in `pages` were observed: when they were fetched, unless the source dates them."""
        return fetched_at

    def fetch_batch(self) -> Batch:
        fetched_at = datetime.now(timezone.utc)
        pages = self.fetch_raw()
        return self.parse(pages, self.observed_at(pages, fetched_at))


class RowsHook(VendorHook):
    """A vendor whose listing is rows of plain values (a price page's table or embedded JSON, a
    transcribed price list): each row is an item that one small `expand` maps to offers. The loop,
    the GPU lookup, the place lookup and the checks live here, once.
    """

    @abstractmethod
    def rows(self, pages: list[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(context, row) for every row; an error here means the whole listing changed shape."""

    @abstractmethod
    def expand(self, row: dict[str, Any], context: Any) -> Iterator[dict[str, Any]]:
        """The offers of one row, as Offer fields plus "gpu" (the vendor's GPU name), prices for the
        whole offer (`availability` "unknown" unless given); `skip(reason)` for a row that is no offer
        (contact sales, CPU-only)."""

    def items(self, pages: list[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        yield from self.rows(pages)

    def locate(self, fields: dict[str, Any], context: Any) -> None:
        """Fill in what `expand` left to the listing as a whole (e.g. the country of a region code)."""

    def item_offers(self, item: tuple[Any, dict[str, Any]], observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        context, row = item
        expanded = False
        for fields in self.expand(row, context):
            if (match := batch.gpu(fields.pop("gpu"))) is None:
                return
            self.locate(fields, context)
            fields.setdefault("availability", Availability.UNKNOWN)
            expanded = True
            yield self.offer(match, observed_at, **fields)
        if not expanded:
            raise ValueError("a priced row that expands to no offer (no regions or GPU counts)")


class StaticCatalogueHook(RowsHook):
    """A vendor that publishes neither a price API nor a readable price page: its price list, dated,
    transcribed in `catalogues/<slug>.json` (the last resort: `gpubroker.vendors`, source "list").

    The file holds {"source": URL, "as_of": "YYYY-MM-DD", "currency": "USD", "price_unit": ...,
    <places>: {code: {"place", "country"}}, <rows>: [...]}; `fetch_pages` yields it. Its offers are
    observed at `as_of` (`observed_at`), so their data age counts from the day the prices were published.
    """

    price_unit: ClassVar[str]  # how the vendor publishes prices, e.g. "per GPU per hour"
    row_list: ClassVar[str]  # key of the catalogue's row list, e.g. "presets"
    # our own transcription of a price page: a quarter of its rows broken means the file is wrong
    drop_threshold: ClassVar[float] = 0.25
    places: ClassVar[str | None] = "regions"  # key of its place table; None: `expand` gives the country

    def rows(self, pages: list[Any]) -> Iterator[tuple[dict[str, Any], Any]]:
        catalogue = self.catalogue(pages)
        rows = catalogue.get(self.row_list)
        self.expect(isinstance(rows, list) and rows, f'expected "{self.row_list}": [...]')
        if self.places:
            self.expect(isinstance(catalogue.get(self.places), dict) and catalogue[self.places],
                        f'expected a "{self.places}" table')  # fmt: skip
        yield from ((catalogue, row) for row in rows)

    def locate(self, fields: dict[str, Any], catalogue: dict[str, Any]) -> None:
        if self.places:
            fields["country"] = self._place(catalogue, fields["region"])["country"]

    def _place(self, catalogue: dict[str, Any], region: str) -> dict[str, Any]:
        if region not in catalogue[self.places]:
            raise ValueError(f"region {region!r} is not in the catalogue's {self.places} table")
        return catalogue[self.places][region]

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

    def observed_at(self, pages: list[Any], fetched_at: datetime) -> datetime:
        """A list's prices are as old as the list: its `as_of` day (00:00 UTC), not the time it was read."""
        try:
            as_of = date.fromisoformat(pages[0]["as_of"])
        except (LookupError, TypeError, ValueError):
            return fetched_at  # a malformed list: `parse` refuses it with the reason
        return datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc)

    def fetch_raw(self) -> list[Any]:
        return list(self.fetch_pages(None))

    def probe(self) -> None:
        self.fetch_raw()

    def fetch_pages(self, client: httpx.Client | None) -> Iterator[Any]:
        yield json.loads((CATALOGUES / f"{self.vendor.slug}.json").read_text())


def times(price: Any, count: int) -> Decimal:
    """A published price (JSON number) times a count, exactly: per-GPU price -> whole offer."""
    if not is_number(price):
        raise ValueError("price is not a number")
    return Decimal(str(price)) * count


def is_number(value: Any) -> bool:
    """A JSON number (not a bool, not a numeric string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(row: dict[str, Any], key: str) -> int | float:
    """`row[key]`, a JSON number; missing or anything else drops the item with a reason naming the field."""
    if not is_number(value := row[key]):
        raise ValueError(f"field {key!r} is not a number")
    return value


def text(row: dict[str, Any], key: str) -> str:
    """`row[key]`, a non-empty string (a name, a code); anything else drops the item."""
    if not isinstance(value := row[key], str) or not value:
        raise ValueError(f"field {key!r} is not a name")
    return value


def number_or_none(row: dict[str, Any], key: str) -> int | float | None:
    """`row[key]` as a JSON number, None when missing or null (an optional field)."""
    return None if row.get(key) is None else number(row, key)


def registry_memory(match: gpus.GpuMatch) -> float:
    """Per-GPU memory from the registry, where the model (and form factor) fixes it."""
    memory = match.model.memory_for(match.form_factor)
    if memory is None:
        sizes = "/".join(f"{m:g}" for m in match.model.memory_gb)
        raise ValueError(f"no GPU memory given and {match.model.name} comes in {sizes} GB")
    return memory


def _describe(error: Exception) -> str:
    """A reason that names what was wrong, short enough to count items by."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    if (type(error) is ValueError or isinstance(error, PayloadError)) and str(error):
        return str(error)  # raised by our own checks, already worded as a reason
    return f"{type(error).__name__}: {error}"
