"""REST API v1, provider integrations: `POST/GET /api/v1/integrations`, `DELETE
/api/v1/integrations/{provider}`, `POST /api/v1/integrations/{provider}/test`, and
`GET /api/v1/integrations/offers`.

An integration is an API key's own credential for a vendor: the key is tested against the vendor (one
real call, through the vendor's circuit breaker) and kept in Vault under the owner's path
(`gpubroker/users/{key id}/providers/{provider}`), never in the database, never in an answer. Each
answer is the check's IntegrationStatus: `ok`, `invalid` (nothing is stored: 400) or `unreachable`
(stored: the vendor could not judge it now). Vault unavailable is a 503 with Retry-After.

A sync with an integration (DAG-run conf `{"integration": {"owner": <key id>, "provider": ...}}`, and
`gpubroker_integrations` daily) lands the owner's own offers, which only that key sees:
`GET /api/v1/integrations/offers` takes the filters of `/api/v1/offers` and answers the public
offers and the caller's own (`owned`), never cached (the gateway's shared cache holds public answers only).

An API key is required (401 without); each key sees only its own integrations (404 for anyone
else's). The vendor call and Vault belong to the provider package, reached through
`integrations.pipeline` (a process of its own: no Airflow in the web workers).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router
from ninja.errors import HttpError

from gateway.callers import data_version, keyed
from gpubroker import webhooks
from gpubroker.integrations import Outcome, Request, Status
from gpubroker_web.responses import json_response
from integrations import schemas
from integrations.models import Integration
from integrations.pipeline import PipelineUnavailable, ask
from offers import queries
from offers.api import OfferQuery
from offers.models import OwnedOffer
from offers.schemas import ERRORS as COMMON_ERRORS
from offers.schemas import Error

router = Router(tags=["integrations"])
ERRORS = {**COMMON_ERRORS, 404: Error, 409: Error}  # 404: not this key's integration; 409: its key is gone from Vault
ProviderPath = Path(..., description="the vendor's slug")
FIELDS = list(schemas.IntegrationOut.model_fields)


def _owner(request: HttpRequest) -> int:
    """The asking API key's id; 401 for the anonymous free tier."""
    return keyed(request, "integrations").key_id


def _out(integration: Integration) -> dict:
    return {name: getattr(integration, name) for name in FIELDS}


def _api_url(url: str | None, owner: int) -> tuple[str | None, list[str]]:
    """The URL, statically checked as webhook targets are (no internal address unless allow-listed for
    this key), and the key's allow-listed hosts; 400 naming what is wrong."""
    connection.ensure_connection()
    allowed = webhooks.allowed_hosts(connection.connection, owner)
    if url is None:
        return None, sorted(allowed)
    try:
        parsed = webhooks.check_url(url, allowed)
    except webhooks.WebhookRefused as refused:
        raise HttpError(400, "api_url refused: " + str(refused).replace("webhook ", "")) from None
    if parsed.query or parsed.fragment:
        raise HttpError(400, "api_url must not carry a query or fragment: give the API's base URL")
    return url, sorted(allowed)


async def _carried_out(action, request: Request) -> Outcome:
    """The provider package's outcome; 503 (Retry-After) when it or Vault cannot answer."""
    try:
        outcome = await ask(action, request)
    except PipelineUnavailable as unavailable:
        raise HttpError(503, f"{unavailable}; retry shortly") from None
    if outcome.failure == "vault_not_configured":
        raise HttpError(503, "integrations need Vault, and none is configured here; ask the operator")
    if outcome.failure in ("vault_unavailable", "vault_refused"):
        raise HttpError(503, f"Vault could not be used ({outcome.failure.replace('_', ' ')}); nothing changed, retry shortly")
    if outcome.failure == "no_credential":
        raise HttpError(409, f"{outcome.message}: POST /api/v1/integrations with the key")
    return outcome


@router.get("/integrations/offers", response={200: schemas.OwnOfferPage, **ERRORS},
            summary="Search offers: the public ones and your own")  # fmt: skip
async def own_offers(request: HttpRequest, query: Query[OfferQuery]):
    """`GET /api/v1/offers` with the offers landed with this key's integrations beside the public
    ones (`owned`: true). Never stored in a shared cache. With `at`: public offers only (owned offers
    keep no price history)."""
    page = await queries.offer_page(query, data_version(request), _owner(request))
    return json_response(page, Cache_Control="private, no-store")


@router.post("/integrations", response={**ERRORS, 201: schemas.IntegrationOut, 400: schemas.IntegrationRefused | Error},
             summary="Add (or replace) a provider integration")  # fmt: skip
async def add_integration(request: HttpRequest, body: schemas.IntegrationIn):
    """Tests the key against the vendor, then keeps it in Vault (unless the vendor refused it: 400,
    nothing stored). Adding one again replaces the key and URL."""
    owner, provider = _owner(request), body.provider.value
    api_url, allowed = await sync_to_async(_api_url)(body.api_url, owner)
    outcome = await _carried_out("add", Request(owner=owner, provider=provider, api_key=body.api_key,
                                                api_url=api_url, allowed_hosts=allowed))  # fmt: skip
    status = outcome.status
    if status.status == Status.INVALID:
        return json_response(status.model_dump() | {"detail": f"nothing was stored: {status.message}"}, status=400)
    saved, _ = await Integration.objects.aupdate_or_create(
        key_id=owner, provider=provider, defaults={"api_url": api_url, **status.model_dump(exclude={"provider"})})
    return json_response(_out(saved), status=201)


@router.get("/integrations", response={200: schemas.IntegrationList, **ERRORS}, summary="This key's integrations")
async def list_integrations(request: HttpRequest):
    owner = _owner(request)
    items = [_out(i) async for i in Integration.objects.filter(key_id=owner).order_by("provider")]
    return json_response({"items": items})


async def _own(request: HttpRequest, provider: str) -> Integration:
    found = await Integration.objects.filter(key_id=_owner(request), provider=provider).afirst()
    if found is None:
        raise HttpError(404, f"no {provider} integration for this API key")
    return found


@router.delete("/integrations/{provider}", response={204: None, **ERRORS}, summary="Remove a provider integration")
async def delete_integration(request: HttpRequest, provider: schemas.KeyedProvider = ProviderPath):
    """Removes the key from Vault (every version), the integration, and the offers landed with it."""
    integration = await _own(request, provider.value)
    await _carried_out("delete", Request(owner=integration.key_id, provider=integration.provider))

    @sync_to_async
    def forget() -> None:
        with transaction.atomic():
            OwnedOffer.objects.filter(owner_id=integration.key_id, provider=integration.provider).delete()
            integration.delete()

    await forget()
    return HttpResponse(status=204)


@router.post("/integrations/{provider}/test", response={200: schemas.IntegrationStatus, **ERRORS},
             summary="Test a provider integration again")  # fmt: skip
async def test_integration(request: HttpRequest, provider: schemas.KeyedProvider = ProviderPath):
    """Tests the key Vault holds against the vendor again, and keeps the result."""
    integration = await _own(request, provider.value)
    _, allowed = await sync_to_async(_api_url)(None, integration.key_id)
    outcome = await _carried_out("test", Request(owner=integration.key_id, provider=integration.provider,
                                                 api_url=integration.api_url, allowed_hosts=allowed))  # fmt: skip
    status = outcome.status
    await Integration.objects.filter(id=integration.id).aupdate(**status.model_dump(exclude={"provider"}))
    return json_response(status.model_dump())
