"""REST API v1, alert rules: `POST/GET /api/v1/alerts`, `GET/DELETE /api/v1/alerts/{id}`,
`GET /api/v1/alerts/{id}/deliveries`.

An API key is required (401 without); each key sees only its own rules (404 for anyone else's).
At creation the target URL gets the static SSRF checks of the delivery path (gpubroker.webhooks
check_url, exempting only hosts allow-listed for this key or its plan), the GPU any alias, and the
key's plan its rule limit (gateway.plans.ALERT_RULES; 403 past it). The signing secret is answered
once, at creation. A delivery shows its owner the target's status and a short excerpt of a refusing
answer, nothing more. Every change is announced on the PostgreSQL channel `alert_rules`, which the
matcher listens to.
"""

from __future__ import annotations

import base64
import secrets

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from ninja import Path, Router
from ninja.errors import HttpError

from alerts import schemas
from alerts.matcher import CHANNEL
from alerts.models import AlertRule
from gateway.callers import keyed
from gateway.keys import Client
from gateway.models import ApiKey
from gateway.plans import ALERT_RULES
from gpubroker import gpus, webhooks
from gpubroker_web.responses import json_response
from offers.schemas import ERRORS as COMMON_ERRORS
from offers.schemas import Error

router = Router(tags=["alerts"])
ERRORS = {**COMMON_ERRORS, 403: Error, 404: Error}  # 403: the plan's rule limit; 404: not this key's rule
RuleId = Path(..., ge=1, le=2**63 - 1, description="the rule's id")
DELIVERIES = 100
FIELDS = list(schemas.RuleOut.model_fields)


def _client(request: HttpRequest) -> Client:
    return keyed(request, "alert rules")


def _own(request: HttpRequest, rule_id: int) -> AlertRule:
    rule = AlertRule.objects.filter(id=rule_id, key_id=_client(request).key_id).first()
    if rule is None:
        raise HttpError(404, f"no alert rule {rule_id} for this API key")
    return rule


def _out(rule: AlertRule, **extra) -> dict:
    return {name: getattr(rule, name) for name in FIELDS} | extra


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _checked_url(url: str, key_id: int) -> str:
    connection.ensure_connection()
    try:
        webhooks.check_url(url, webhooks.allowed_hosts(connection.connection, key_id))
    except webhooks.WebhookRefused as refused:
        raise HttpError(400, str(refused)) from None
    return url


def _gpu(name: str | None) -> str | None:
    try:
        return None if name is None else gpus.resolve(name).model.name
    except gpus.UnknownGpu:
        raise HttpError(400, f"unknown GPU model {name!r}; use a name such as H100, A100, RTX4090") from None


@router.post("/alerts", response={201: schemas.RuleCreated, **ERRORS}, summary="Create an alert rule")
def create_rule(request: HttpRequest, rule: schemas.RuleIn):
    """The answer carries the rule's signing secret (`whsec_...`), the only time it is shown:
    verify each webhook's `webhook-signature` with it (Standard Webhooks)."""
    client = _client(request)
    values = rule.model_dump() | {
        "gpu": _gpu(rule.gpu), "webhook_url": _checked_url(rule.webhook_url, client.key_id),
        "providers": None if rule.providers is None else sorted({p.value for p in rule.providers}),
        "region": rule.region and rule.region.lower(), "country": rule.country and rule.country.value,
        "continent": rule.continent and rule.continent.value,
    }  # fmt: skip
    limit = ALERT_RULES[client.plan]
    with transaction.atomic():
        ApiKey.objects.select_for_update().filter(id=client.key_id).first()  # one creation per key at a time
        if AlertRule.objects.filter(key_id=client.key_id).count() >= limit:
            raise HttpError(403, f"the {client.plan.value} plan allows {limit} alert rules; delete one first")
        created = AlertRule.objects.create(key_id=client.key_id, secret=new_secret(), **values)
        _notify()
    created.refresh_from_db()  # prices as stored (4 decimal places)
    return json_response(_out(created, secret=created.secret), status=201)


@router.get("/alerts", response={200: schemas.RuleList, **ERRORS}, summary="This key's alert rules")
def list_rules(request: HttpRequest):
    client = _client(request)
    rules = AlertRule.objects.filter(key_id=client.key_id).order_by("id")
    return json_response({"items": [_out(r) for r in rules], "limit": ALERT_RULES[client.plan]})


@router.get("/alerts/{rule_id}", response={200: schemas.RuleOut, **ERRORS}, summary="One alert rule")
def get_rule(request: HttpRequest, rule_id: int = RuleId):
    return json_response(_out(_own(request, rule_id)))


@router.delete("/alerts/{rule_id}", response={204: None, **ERRORS}, summary="Delete an alert rule")
def delete_rule(request: HttpRequest, rule_id: int = RuleId):
    """Matches not yet delivered are dropped: the delivery refuses a deleted rule's webhooks."""
    with transaction.atomic():
        _own(request, rule_id).delete()
        _notify()
    return HttpResponse(status=204)


@router.get("/alerts/{rule_id}/deliveries", response={200: schemas.DeliveryList, **ERRORS},
            summary="The rule's webhook deliveries")  # fmt: skip
def deliveries(request: HttpRequest, rule_id: int = RuleId):
    """Per match (newest first): status, attempts, and the last attempt's response code and latency,
    from the delivery log the webhook DAG writes."""
    rule = _own(request, rule_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.webhook_id, m.event_id, m.event_type, m.matched_at,"
            " CASE WHEN bool_or(d.delivered) THEN 'delivered' WHEN count(d.id) = 0 THEN 'queued' ELSE 'failing' END,"
            " count(d.id), (array_agg(d.status_code ORDER BY d.delivered DESC, d.id DESC))[1],"
            " (array_agg(d.latency_ms ORDER BY d.delivered DESC, d.id DESC))[1], max(d.created_at),"
            " coalesce((array_agg(d.error ORDER BY d.delivered DESC, d.id DESC))[1], '')"
            " FROM alert_matches m LEFT JOIN webhook_delivery d ON d.webhook_id = m.webhook_id"
            " WHERE m.rule_id = %s GROUP BY m.id ORDER BY m.matched_at DESC, m.id DESC LIMIT %s",
            [rule.id, DELIVERIES],
        )  # fmt: skip
        items = [dict(zip(schemas.DeliveryOut.model_fields, row)) for row in cursor.fetchall()]
    return json_response({"items": items})
