"""Offer search: the public API's filters, sorts and paging, as one parameterised SQL query.

Framework-free (pydantic + SQL text), so every reader runs the same query. Units: prices are USD
per hour for the whole offer; `price_per_gpu` = price_per_hour / gpu_count; `price_per_gb_vram` =
price_per_hour / (gpu_count x gpu_memory_gb); memory in GB. With `at`, prices are those the offer
had then (its latest `price_history` row at or before `at`, offers first seen by then); other
attributes, availability included, are as last seen (their history is not kept).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from gpubroker import gpus, regions
from gpubroker.schema import Availability, FormFactor, Interconnect, PricingType, offer_key

MAX_PER_PAGE = 500
MAX_RESULTS = 10_000  # the deepest row paging reaches: page x per_page beyond it is refused
MAX_PRICE = 1_000_000.0  # USD per hour: far above any real offer
CONTINENTS = ("AF", "AN", "AS", "EU", "NA", "OC", "SA")
GPU_VENDORS = tuple(sorted({m.vendor for m in gpus.MODELS}))


class BadQuery(ValueError):
    """A well-formed parameter that names nothing GPUBroker knows, or pages past the end (a 400)."""


class Sort(StrEnum):
    PRICE = "price"
    PRICE_DESC = "-price"
    PRICE_PER_GPU = "price_per_gpu"
    PRICE_PER_GPU_DESC = "-price_per_gpu"
    PRICE_PER_GB_VRAM = "price_per_gb_vram"
    PRICE_PER_GB_VRAM_DESC = "-price_per_gb_vram"
    GPU_MEMORY = "gpu_memory"
    GPU_MEMORY_DESC = "-gpu_memory"
    LAST_SEEN = "last_seen"
    LAST_SEEN_DESC = "-last_seen"


_SORT_SQL = {
    "price": "price_per_hour",
    "price_per_gpu": "price_per_hour / gpu_count",
    "price_per_gb_vram": "price_per_hour / NULLIF(gpu_count * gpu_memory_gb, 0)",
    "gpu_memory": "gpu_memory_gb",
    "last_seen": "last_seen",
}


def _iso8601(value: Any) -> Any:
    """Only ISO 8601 text is a time here (pydantic would also read `0.5` as a Unix timestamp)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("give an ISO 8601 time with a timezone, e.g. 2026-12-01T12:00:00Z") from None
    if not isinstance(value, datetime):
        raise ValueError("give an ISO 8601 time with a timezone, e.g. 2026-12-01T12:00:00Z")
    if value.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-12-01T12:00:00Z")
    return value


# An instant, written in ISO 8601 with its timezone (RFC 3339, the OpenAPI `date-time` format).
Timestamp = Annotated[datetime, BeforeValidator(_iso8601)]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise PydanticCustomError("nul_character", "must not contain a NUL character (\\x00)")
    return text


def text(max_length: int, min_length: int = 1) -> Any:
    """Free text from a client (a query parameter, a JSON field, a WebSocket frame) of `min_length` to
    `max_length` characters that PostgreSQL and Redis can take: a NUL character is refused here, a
    lone surrogate (not UTF-8) by pydantic's length check. The pattern tells the OpenAPI document
    (and so the contract fuzzer) that NUL is refused."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, json_schema_extra={"pattern": r"^[^\x00]*$"}),
                     AfterValidator(_no_nul)]  # fmt: skip


# Names are enums, so the OpenAPI document says exactly what is accepted (and the contract fuzzer
# can hold us to it); only GPU names stay free text, since the registry reads any vendor alias.
Country = StrEnum("Country", {c: c for c in sorted(regions.CONTINENT_OF)})
Continent = StrEnum("Continent", {c: c for c in CONTINENTS})
GpuVendor = StrEnum("GpuVendor", {v: v for v in GPU_VENDORS})
Price = Annotated[float, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)]
Gb = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
GpuCount = Annotated[int, Field(ge=1, le=16)]


class OfferQuery(BaseModel):
    """Query parameters of `GET /api/v1/offers` (and the WebSocket's `get_offers`)."""

    model_config = ConfigDict(extra="ignore")

    gpu: text(64) | None = Field(None, description="GPU model, canonical or any vendor alias: H100, 'RTX 4090', 'H100 SXM'")
    gpu_vendor: GpuVendor | None = None
    provider: list[str] | None = Field(None, description="provider slug; repeat for several: provider=vastai&provider=lambda")
    region: text(64) | None = Field(None, description="vendor region, case-insensitive")
    country: Country | None = Field(None, description="ISO 3166 country code")
    continent: Continent | None = None
    min_gpu_count: GpuCount | None = None
    max_gpu_count: GpuCount | None = None
    min_gpu_memory_gb: Gb | None = Field(None, description="per GPU, GB")
    min_vcpus: int | None = Field(None, ge=0, le=100_000)
    min_ram_gb: Gb | None = None
    max_price: Price | None = Field(None, description="USD per hour for the whole offer")
    max_price_per_gpu: Price | None = Field(None, description="USD per GPU-hour")
    spot: bool | None = Field(None, description="true: only offers with a spot price; false: only without")
    availability: list[Availability] | None = Field(None, description="repeat for several")
    form_factor: FormFactor | None = None
    interconnect: list[Interconnect] | None = Field(None, description="GPU interconnect as the vendor states it; repeat for several")
    pricing_type: list[PricingType] | None = Field(None, description="on_demand, spot or reserved; repeat for several")
    max_commitment_months: int | None = Field(None, ge=0, le=120,
                                              description="reserved offers committing at most this long (on-demand and spot: 0)")
    sort: Sort = Field(Sort.PRICE, description="a field, cheapest/smallest first; prefix '-' for descending")
    page: int = Field(1, ge=1, le=MAX_RESULTS, description=f"1-based; page x per_page may not pass {MAX_RESULTS} (400)")
    per_page: int = Field(50, ge=1, le=MAX_PER_PAGE)
    at: Timestamp | None = Field(None, description="prices as they stood at this time (ISO 8601 with timezone)")


@dataclass
class Search:
    """A validated query as SQL, plus what was read differently from how it was written."""

    source: str  # the offers as of now, or as of `at`
    where: list[str]
    order: str
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    providers: list[str] | None = None  # the providers the answer is restricted to (None: all)
    with_owned: bool = False  # the source holds an owner's own offers too (rows carry `owner`)

    def _matching(self, columns: str) -> str:
        where = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        return f"WITH src AS ({self.source}) SELECT {columns} FROM src{where}"

    @property
    def sql(self) -> str:
        """One page of matching offers, each with the count of all matches (`total`)."""
        page = " LIMIT %(limit)s OFFSET %(offset)s"
        columns = ", ".join((*_OFFER_COLUMNS, "owner") if self.with_owned else _OFFER_COLUMNS)
        return self._matching(f"{columns}, count(*) OVER () AS total") + f" ORDER BY {self.order}" + page

    @property
    def count_sql(self) -> str:
        """How many offers match (for a page past the last one, which carries no `total`)."""
        return self._matching("count(*) AS total")


_OFFER_COLUMNS = (
    "provider", "offer_id", "instance_type", "gpu_model", "gpu_form_factor", "gpu_vendor", "gpu_count",
    "gpu_memory_gb", "vcpus", "ram_gb", "disk_gb", "price_per_hour", "spot_price", "region", "country",
    "continent", "availability", "available_count", "cpu_arch", "interconnect", "pricing_type", "commitment_months", "cloud",
    "inferred", "tags", "observed_at", "first_seen", "last_seen",
)  # fmt: skip
_PRICED = ("price_per_hour", "spot_price", "observed_at")
_NOW = "SELECT * FROM offers"
# The public offers and one owner's own (`owned_offers`, landed with the owner's vendor credentials):
# `owner` is NULL for a public offer. No other owner's row can enter: the owner is a parameter.
_NOW_WITH_OWNED = (
    f"SELECT {', '.join(_OFFER_COLUMNS)}, NULL::bigint AS owner FROM offers"
    f" UNION ALL SELECT {', '.join(_OFFER_COLUMNS)}, owner_id AS owner FROM owned_offers WHERE owner_id = %(owner)s"
)
_AT = (
    "SELECT " + ", ".join(f"p.{c}" if c in _PRICED else f"o.{c}" for c in _OFFER_COLUMNS)
    + " FROM offers o JOIN LATERAL (SELECT h.price_per_hour, h.spot_price, h.observed_at FROM price_history h"
    " WHERE h.provider = o.provider AND h.offer_id = o.offer_id AND h.observed_at <= %(at)s"
    " ORDER BY h.observed_at DESC LIMIT 1) p ON true WHERE o.first_seen <= %(at)s"
)  # fmt: skip


def build(query: OfferQuery, known_providers: Collection[str], owner: int | None = None) -> Search:
    """The SQL for `query`; BadQuery for names GPUBroker does not know and for paging past the end.

    Public offers only, unless `owner` (an API key's id) is given: then that key's own offers too
    (each row's `owner` says which are), never another key's. With `at` the answer is public only:
    owned offers keep no price history."""
    if query.page * query.per_page > MAX_RESULTS:
        raise BadQuery(f"page {query.page} x per_page {query.per_page} passes the last reachable result "
                       f"({MAX_RESULTS}); narrow the filters instead of paging deeper")  # fmt: skip
    where, params, warnings = [], {}, []

    def add(condition: str, **values: Any) -> None:
        where.append(condition)
        params.update(values)

    if query.gpu:
        try:
            match = gpus.resolve(query.gpu)
        except gpus.UnknownGpu:
            raise BadQuery(f"unknown GPU model {query.gpu!r}; use a name such as H100, A100, RTX4090") from None
        add("gpu_model = %(gpu)s", gpu=match.model.name)
        if match.form_factor:
            add("gpu_form_factor = %(gpu_form)s", gpu_form=match.form_factor.value)
        read_as = match.model.name + (f" ({match.form_factor.value})" if match.form_factor else "")
        if read_as != query.gpu:
            warnings.append(f"gpu {query.gpu!r} read as {read_as!r}")
    if query.gpu_vendor:
        add("gpu_vendor = %(gpu_vendor)s", gpu_vendor=query.gpu_vendor.value)
    providers = sorted({str(p) for p in query.provider}) if query.provider else None  # str(): enums too
    if providers:
        if unknown := [p for p in providers if p not in known_providers]:
            raise BadQuery(f"unknown provider {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known_providers))}")
        add("provider = ANY(%(providers)s)", providers=providers)
    if query.region:
        add("lower(region) = lower(%(region)s)", region=query.region)
    if query.country:
        add("country = %(country)s", country=query.country.value)
    if query.continent:
        add("continent = %(continent)s", continent=query.continent.value)
    if query.min_gpu_count is not None and query.max_gpu_count is not None and query.min_gpu_count > query.max_gpu_count:
        raise BadQuery(f"min_gpu_count {query.min_gpu_count} is above max_gpu_count {query.max_gpu_count}")
    for name, condition in (
        ("min_gpu_count", "gpu_count >= %(min_gpu_count)s"),
        ("max_gpu_count", "gpu_count <= %(max_gpu_count)s"),
        ("min_gpu_memory_gb", "gpu_memory_gb >= %(min_gpu_memory_gb)s"),
        ("min_vcpus", "vcpus >= %(min_vcpus)s"),
        ("min_ram_gb", "ram_gb >= %(min_ram_gb)s"),
        ("max_price", "price_per_hour <= %(max_price)s"),
        ("max_price_per_gpu", "price_per_hour <= %(max_price_per_gpu)s * gpu_count"),
    ):
        if (value := getattr(query, name)) is not None:
            add(condition, **{name: value})
    if query.spot is not None:
        add("spot_price IS NOT NULL" if query.spot else "spot_price IS NULL")
    if query.availability:
        add("availability = ANY(%(availability)s)", availability=sorted({a.value for a in query.availability}))
    if query.form_factor:
        add("gpu_form_factor = %(form_factor)s", form_factor=query.form_factor.value)
    if query.interconnect:
        add("interconnect = ANY(%(interconnect)s)", interconnect=sorted({i.value for i in query.interconnect}))
    if query.pricing_type:
        add("pricing_type = ANY(%(pricing_type)s)", pricing_type=sorted({p.value for p in query.pricing_type}))
    if query.max_commitment_months is not None:
        add("COALESCE(commitment_months, 0) <= %(max_commitment_months)s", max_commitment_months=query.max_commitment_months)
    if query.at is not None:
        params["at"] = query.at

    descending = query.sort.value.startswith("-")
    order = f"{_SORT_SQL[query.sort.value.lstrip('-')]} {'DESC' if descending else 'ASC'} NULLS LAST, provider, offer_id"
    params |= {"limit": query.per_page, "offset": (query.page - 1) * query.per_page}
    if owner is not None and query.at is None:  # the owner's offers after the public one of the same id
        params["owner"] = owner
        return Search(_NOW_WITH_OWNED, where, order + ", owner NULLS FIRST", params, warnings, providers, with_owned=True)
    return Search(_AT if query.at is not None else _NOW, where, order, params, warnings, providers)


CURRENCY = "USD"  # of every price: vendors' prices are normalised to US dollars


def item(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """One offer as the API shows it: its stable `id` (`schema.offer_key`) and `currency`, JSON numbers
    for prices, plus price per GPU and data age."""
    now = now or datetime.now(timezone.utc)
    out = {"id": offer_key(row["provider"], row["offer_id"]), "currency": CURRENCY} | {c: row[c] for c in _OFFER_COLUMNS}
    if "owner" in row:  # a search with an owner: say which offers are the owner's own
        out["owned"] = row["owner"] is not None
    for price in ("price_per_hour", "spot_price"):
        if out[price] is not None:
            out[price] = float(out[price])
    out["price_per_gpu"] = round(out["price_per_hour"] / out["gpu_count"], 4)
    out["data_age_seconds"] = max(0, int((now - row["observed_at"]).total_seconds()))
    return out
