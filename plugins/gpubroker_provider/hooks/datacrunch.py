"""DataCrunch: fixed-price on-demand instance types, where they can be deployed now, and locations.

Auth: OAuth2 client credentials. The connection password holds `<client_id>:<client_secret>`;
POST {base}/v1/oauth2/token with JSON `{"grant_type": "client_credentials", "client_id", "client_secret"}`
answers `{"access_token", "refresh_token", "scope", "token_type": "Bearer", "expires_in": 3600}`; every
other call carries `Authorization: Bearer <access_token>`. The token call goes through `self.request`
(retries, timeouts, clear errors); the secret travels only in that body, both secret and token are
masked in Airflow logs, and no error message carries them. A password without ":" is taken as an
access token already issued (how the replay server, one auth style per vendor, is driven).
Errors are `{"code": "unauthorized_request", "message": ...}`.

Calls (no pagination; each answers a JSON list):
  GET /v1/instance-types        — one row per instance type, e.g. "1H100.80S.30V";
  GET /v1/instance-availability — `[{"location_code": "FIN-01", "availabilities": [instance types]}]`;
  GET /v1/locations             — `[{"code": "FIN-01", "name": "Finland 1", "country_code": "FI"}]`.
Fields and units (instance types):
  `price_per_hour` — USD per hour for the WHOLE instance, fixed on-demand price, a decimal STRING;
  `spot_price` (`spot_price_per_hour` in the SDK's spelling) — USD per hour for the whole instance,
    spot, a decimal string;
  `gpu.description` ("8x H100 SXM5 80GB", "1x NVIDIA RTX A6000 48GB") — count prefix, GPU name,
    form factor, per-GPU memory;
  `gpu.number_of_gpus`; `gpu_memory.size_in_gigabytes` — GB for ALL the instance's GPUs together
    (divided by the GPU count for the per-GPU figure); `memory.size_in_gigabytes` — RAM, GB;
  `cpu.number_of_cores` — vCPUs. Storage is billed separately (`storage.description` "dynamic"):
  disk left empty, except where a type comes with local NVMe (`storage.size_in_gigabytes`, GB).
Offers: one per instance type and location listing it in `availabilities` (offer_id
`<instance_type>@<location_code>`, available); a type available nowhere keeps one offer in region
"unknown" (offer_id `<instance_type>@none`, unavailable). Country from /v1/locations' `country_code`.
Not used: `dynamic_price` (DataCrunch's variable price) — the listing price is the fixed
`price_per_hour`.
Items: every location, availability row and instance type, each read on its own. Skipped (counted):
CPU-only types (`number_of_gpus` 0). Dropped with their reason: an availability row at a location
the locations listing does not name, a type priced in another currency than USD, a type whose GPU
description disagrees with its GPU count.
Layouts accepted: the DataCrunch answers above, and the Verda one (DataCrunch renamed, same API):
`currency` ("usd"), `manufacturer`, `display_name`, `supported_os`, `p2p: null`, model names
without memory ("H100"), and local NVMe given as `storage.size_in_gigabytes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
from airflow.sdk.log import mask_secret

from gpubroker import gpus
from gpubroker.schema import Availability, Offer
from gpubroker_provider.hooks.base import Batch, PayloadError, Variant, VendorHook, skip, text
from gpubroker.vendors import VENDORS

TOKEN_PATH = "/v1/oauth2/token"
LISTINGS = ("/v1/instance-types", "/v1/instance-availability", "/v1/locations")
GPU_DESCRIPTION = re.compile(r"^(?P<count>\d+)x (?P<name>.+)$")
NOWHERE = "none"


class DataCrunchHook(VendorHook):
    vendor = VENDORS["datacrunch"]
    variants = (
        Variant("verda-layout", "instance-types.json", "Verda's instance types: `currency`, `manufacturer`, "
                "`display_name`, `supported_os`, local NVMe in `storage.size_in_gigabytes`"),
        Variant("sdk-names", "instance-types.json", "the SDK's spellings: `spot_price_per_hour` (null where "
                'none), GPU descriptions with a vendor prefix ("2x NVIDIA RTX A6000 48GB"), `p2p` "50GB/s"'),
    )
    _credentials: str | None = None

    def auth_headers(self, api_key: str) -> dict[str, str]:
        if ":" in api_key:
            return {}  # client credentials: the Bearer token is fetched in fetch_pages
        return {"Authorization": f"Bearer {api_key}"}

    def client(self) -> httpx.Client:
        base_url, api_key = self._resolve_endpoint()
        self._credentials = api_key
        headers = {"Accept": "application/json", "User-Agent": "gpubroker/0.1"} | self.auth_headers(api_key or "")
        return httpx.Client(base_url=base_url, headers=headers, timeout=self.timeout)

    def fetch_pages(self, client: httpx.Client) -> Iterator[Any]:
        if self._credentials and ":" in self._credentials:
            client.headers["Authorization"] = f"Bearer {self._access_token(client, self._credentials)}"
        for path in LISTINGS:
            yield self.request(client, "GET", path)

    def _access_token(self, client: httpx.Client, credentials: str) -> str:
        client_id, _, client_secret = credentials.partition(":")
        mask_secret(client_secret)
        body = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        answer = self.request(client, "POST", TOKEN_PATH, json=body)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or answer.get("token_type", "Bearer").lower() != "bearer":
            raise PayloadError(f"{self.vendor.slug}: malformed payload: token answer has no Bearer access_token")
        mask_secret(token)
        return token

    def pages_from_primary(self, body: Any) -> list[Any]:
        return [body, None, []]  # instance types alone: where each is available is unknown

    def items(self, pages: list[Any]) -> Iterator[tuple[str, Any]]:
        """("location", row), ("availability", row) and ("type", row) for every row of the three listings."""
        self.expect(len(pages) == len(LISTINGS) and all(isinstance(p, list) for p in pages if p is not None)
                    and isinstance(pages[0], list),
                    "expected three JSON lists: instance types, availability, locations")  # fmt: skip
        instance_types, availability, locations = pages
        yield from (("location", row) for row in locations)
        yield from (("availability", row) for row in availability or [])
        yield from (("type", row) for row in instance_types)

    def normalise(self, pages: list[Any], observed_at: datetime, batch: Batch) -> None:
        listed = list(self.items(pages))
        rows = {kind: [row for k, row in listed if k == kind] for kind in ("location", "availability", "type")}
        country = dict(batch.each(rows["location"], lambda loc: (text(loc, "code"), text(loc, "country_code"))))
        where: dict[str, list[str]] = {}
        for code, names in batch.each(rows["availability"], lambda entry: _where(entry, country)):
            for name in names:
                where.setdefault(name, []).append(code)
        known = pages[1] is not None  # None: only the instance types were read (`pages_from_primary`)
        for row in rows["type"]:
            with batch.item():
                for offer in self._type(row, where, country, known, observed_at, batch):
                    batch.add(offer)

    def _type(self, row: dict[str, Any], where: dict[str, list[str]], country: dict[str, str], known: bool,
              observed_at: datetime, batch: Batch) -> Iterator[Offer]:
        if row["gpu"]["number_of_gpus"] == 0:
            skip("CPU-only instance type")
        self.expect(row.get("currency", "usd").lower() == "usd", f"prices in {row.get('currency')!r}, not USD")
        count, name = _gpu(row["gpu"]["description"])
        self.expect(count == row["gpu"]["number_of_gpus"], "GPU count disagrees with the GPU description")
        if match := batch.gpu(name):
            for code in where.get(row["instance_type"], [NOWHERE]):
                yield self._offer(row, code, country.get(code), match, observed_at, known)

    def _offer(self, row: dict[str, Any], code: str, country: str | None, match: gpus.GpuMatch,
               observed_at: datetime, availability_known: bool = True) -> Offer:
        count = row["gpu"]["number_of_gpus"]
        price, spot = float(row["price_per_hour"]), row.get("spot_price") or row.get("spot_price_per_hour")
        spot = float(spot) if spot else None
        available = code != NOWHERE
        local_disk = (row.get("storage") or {}).get("size_in_gigabytes")  # local NVMe; absent: "dynamic"
        return self.offer(
            match,
            observed_at,
            region=code if available else "unknown",
            country=country,
            offer_id=f"{row['instance_type']}@{code}",
            instance_type=row["instance_type"],
            gpu_count=count,
            gpu_memory_gb=row["gpu_memory"]["size_in_gigabytes"] / count,
            vcpus=row["cpu"]["number_of_cores"],
            ram_gb=row["memory"]["size_in_gigabytes"],
            disk_gb=local_disk,
            price_per_hour=price,
            spot_price=spot if spot and spot <= price else None,
            availability=Availability.AVAILABLE if available
            else Availability.UNAVAILABLE if availability_known else Availability.UNKNOWN,
        )


def _where(entry: dict[str, Any], country: dict[str, str]) -> tuple[str, list[str]]:
    """(location code, instance types deployable there) of one availability row, at a known location."""
    code, names = entry["location_code"], entry["availabilities"]
    if code not in country:
        raise ValueError(f"availability at an unknown location {code!r}")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("availabilities is not a list of instance types")
    return code, names


def _gpu(description: str) -> tuple[int, str]:
    """'8x H100 SXM5 80GB' -> (8, 'H100 SXM5 80GB')."""
    found = GPU_DESCRIPTION.match(description)
    if found is None:
        raise ValueError(f"unparseable gpu description {description!r}")
    return int(found["count"]), found["name"]
