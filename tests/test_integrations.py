"""Provider integrations over real HTTP: the API (its checks and Vault writes run in the provider
package's own process, as in production), the vendor replay server, the KV-v2 Vault test server
(tests/vault_server.py: no Vault can be installed here), PostgreSQL and Redis.

The replay server accepts one key, `replay-key`; every other key gets the vendor's own 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from gpubroker import search, settings, store
from gpubroker.breaker import Breaker
from gpubroker.integrations import Request, Status
from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from gpubroker_provider import integrations as provider_integrations
from gpubroker_provider.hooks.vault import CredentialNotFound, CredentialsVaultHook
from tests.conftest import REPLAY_KEY
from tests.test_vault import TOKEN, conn_json
from tests.vault_server import KvV2TestServer, serve
from tests.webapp_fixtures import NOW, make_key, offer_row

PIPELINE_KEY = "pipeline-key-" + "x" * 12  # the vendor connection's own key: never an owner's
WRONG = "sk-wrong-0123456789"
INTEGRATIONS = "/api/v1/integrations"


class VaultTestServer:
    def __init__(self, server: KvV2TestServer, url: str):
        self.server, self.url = server, url

    def secret(self, owner: int, provider: str) -> httpx.Response:
        """The credential as stored, read straight from the server (not through our code)."""
        return httpx.get(f"{self.url}/v1/secret/data/gpubroker/users/{owner}/providers/{provider}",
                         headers={"X-Vault-Token": TOKEN})  # fmt: skip


@pytest.fixture(scope="module")
def vault_server():
    server = KvV2TestServer(tokens={TOKEN})
    with serve(server) as url:
        yield VaultTestServer(server, url)


@pytest.fixture
def env(vault_server, replay, isolated_redis, pg_url, monkeypatch):
    """Vault (the test server) as the stack's `gpubroker_vault` connection, the vendors' connections
    pointing at the replay server with the pipeline's own key, a Fernet key (the shared, encrypted
    credential cache in Redis), and the test database as the pipeline's."""
    vault_server.server.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{settings.VAULT_CONN_ID.upper()}", conn_json(vault_server.url))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    for slug in ("vastai", "lambda"):
        vendor_connection(monkeypatch, replay, PIPELINE_KEY, slug)
    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    yield vault_server
    vault_server.server.reset()


def owner_of(key: str) -> int:
    """The id of an API key: its integrations' owner."""
    from gateway import keys
    from gateway.models import ApiKey

    return ApiKey.objects.get(digest=keys.digest(key)).id


async def key_id(key: str) -> int:
    return await sync_to_async(owner_of)(key)


def breaker(provider: str, client) -> tuple[int, int]:
    snapshot = Breaker(provider, client).snapshot()
    return snapshot.successes_total, snapshot.failures_total


# --- the API --------------------------------------------------------------------------------------


async def test_adding_tests_the_key_keeps_it_in_vault_and_answers_its_status(api, unlimited_key, env, isolated_redis):
    answer = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["provider"], body["status"], body["api_url"]) == ("vastai", "ok", None)
    assert "accepted the key (HTTP 200)" in body["message"]
    assert datetime.fromisoformat(body["last_checked"]) > datetime.now(timezone.utc).replace(year=2020)
    owner = await key_id(unlimited_key)
    stored = env.secret(owner, "vastai")
    assert stored.status_code == 200 and stored.json()["data"]["data"] == {"api_key": REPLAY_KEY}
    assert breaker("vastai", isolated_redis) == (1, 0)  # the real call went through the vendor's breaker

    listed = await api.get(INTEGRATIONS)
    assert listed.status_code == 200
    assert [(i["provider"], i["status"]) for i in listed.json()["items"]] == [("vastai", "ok")]
    assert REPLAY_KEY not in listed.text and REPLAY_KEY not in answer.text


async def test_a_key_the_vendor_refuses_is_invalid_and_nothing_is_stored(api, unlimited_key, env, replay, isolated_redis,
                                                                        monkeypatch):  # fmt: skip
    # The vendor's connection holds a valid key: the owner's wrong key must never fall back to it.
    vendor_connection(monkeypatch, replay, REPLAY_KEY)
    answer = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": WRONG})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["status"] == "invalid" and "refused the key (HTTP 401)" in body["message"]
    assert body["detail"].startswith("nothing was stored")
    assert WRONG not in answer.text
    assert env.secret(await key_id(unlimited_key), "vastai").status_code == 404
    assert (await api.get(INTEGRATIONS)).json()["items"] == []
    assert breaker("vastai", isolated_redis) == (1, 0)  # the vendor answered: a refused key is no outage


def vendor_connection(monkeypatch, replay, key: str, slug: str = "vastai") -> None:
    """The vendor's Airflow connection: the replay server, with `key` (the pipeline's own key)."""
    conn = {"conn_type": f"gpubroker_{slug}", "host": replay.vendor_url(slug), "password": key}
    monkeypatch.setenv(f"AIRFLOW_CONN_GPUBROKER_{slug.upper()}", json.dumps(conn))


async def test_an_unreachable_vendor_keeps_the_key_and_a_test_later_finds_it_ok(api, unlimited_key, env, replay, isolated_redis):
    replay.faults("vastai", *[{"status": 503}] * provider_integrations.CHECK_ATTEMPTS)
    added = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "unreachable" and "HTTP 503" in added.json()["message"]
    assert breaker("vastai", isolated_redis) == (0, 1)
    assert env.secret(await key_id(unlimited_key), "vastai").status_code == 200  # kept: the vendor could not judge it

    tested = await api.post(f"{INTEGRATIONS}/vastai/test")
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "ok"
    assert [i["status"] for i in (await api.get(INTEGRATIONS)).json()["items"]] == ["ok"]


async def test_deleting_removes_the_key_the_integration_and_its_offers(api, unlimited_key, env):
    from offers.models import OwnedOffer

    assert (await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})).status_code == 201
    owner = await key_id(unlimited_key)
    await sync_to_async(owned_row)("gone-1", owner)
    deleted = await api.delete(f"{INTEGRATIONS}/vastai")
    assert deleted.status_code == 204, deleted.text
    assert env.secret(owner, "vastai").status_code == 404
    assert (await api.get(INTEGRATIONS)).json()["items"] == []
    assert not await OwnedOffer.objects.filter(owner_id=owner).aexists()
    assert (await api.delete(f"{INTEGRATIONS}/vastai")).status_code == 404


async def test_integrations_belong_to_a_key_and_no_other_key_sees_or_touches_them(api, webapp, env):
    assert (await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})).status_code == 201
    other = {"Authorization": f"Bearer {await sync_to_async(make_key)('pro')}"}
    assert (await webapp.get(INTEGRATIONS, headers=other)).json()["items"] == []
    assert (await webapp.post(f"{INTEGRATIONS}/vastai/test", headers=other)).status_code == 404
    assert (await webapp.delete(f"{INTEGRATIONS}/vastai", headers=other)).status_code == 404
    anonymous = await webapp.get(INTEGRATIONS, headers={"Authorization": ""})
    assert anonymous.status_code == 401 and "Authorization: Bearer" in anonymous.json()["detail"]
    assert [i["provider"] for i in (await api.get(INTEGRATIONS)).json()["items"]] == ["vastai"]


@pytest.mark.parametrize("body, problem", [
    ({"provider": "aws", "api_key": REPLAY_KEY}, "provider"),  # a public price source takes no key
    ({"provider": "nope", "api_key": REPLAY_KEY}, "provider"),
    ({"provider": "vastai", "api_key": "short"}, "api_key"),
    ({"provider": "vastai", "api_key": "has a space in it"}, "api_key"),
    ({"provider": "vastai"}, "api_key"),
])  # fmt: skip
async def test_malformed_requests_get_a_422_naming_the_field_and_never_echo_the_key(api, env, body, problem):
    answer = await api.post(INTEGRATIONS, json=body)
    assert answer.status_code == 422, answer.text
    assert [e["parameter"] for e in answer.json()["errors"]] == [problem]
    assert not body.get("api_key") or body["api_key"] not in answer.text


async def test_an_api_url_must_be_public_or_allow_listed_for_the_key(api, unlimited_key, env, replay, isolated_redis):
    from offers.models import WebhookAllowedHost

    url = replay.vendor_url("vastai")  # http://127.0.0.1:PORT/vastai
    refused = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY, "api_url": url})
    assert refused.status_code == 400 and "api_url refused" in refused.json()["detail"]
    assert "internal address (loopback)" in refused.json()["detail"]
    with_query = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY, "api_url": url + "?x=1"})
    assert with_query.status_code == 400

    await WebhookAllowedHost.objects.acreate(host="127.0.0.1", key_id=await key_id(unlimited_key), note="tests")
    added = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY, "api_url": url})
    assert added.status_code == 201, added.text
    assert (added.json()["status"], added.json()["api_url"]) == ("ok", url)
    assert breaker("vastai", isolated_redis) == (0, 0)  # the owner's own endpoint never feeds the vendor's breaker


async def test_vault_unavailable_is_a_503_and_nothing_is_kept(api, env):
    env.server.sealed = True
    answer = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] and "Vault" in answer.json()["detail"]
    assert REPLAY_KEY not in answer.text
    env.server.sealed = False
    assert (await api.get(INTEGRATIONS)).json()["items"] == []


async def test_without_vault_integrations_answer_503_at_once_and_no_vendor_is_called(api, env, monkeypatch, isolated_redis):
    monkeypatch.delenv(f"AIRFLOW_CONN_{settings.VAULT_CONN_ID.upper()}")
    started = time.monotonic()  # no process is started: the webapp knows it has no Vault
    answer = await api.post(INTEGRATIONS, json={"provider": "vastai", "api_key": REPLAY_KEY})
    assert answer.status_code == 503 and "none is configured" in answer.json()["detail"], answer.text
    assert time.monotonic() - started < 2.0
    assert breaker("vastai", isolated_redis) == (0, 0)


# --- syncing with an owner's key, and who sees the offers -------------------------------------------


def offer_values(offer_id: str, **fields) -> dict:
    """An offer's columns (`webapp_fixtures.offer_row`'s defaults), first and last seen included."""
    row = offer_row(offer_id, **fields)
    return {f: getattr(row, f) for f in (*Offer.model_fields, "first_seen", "last_seen")}


def owned_row(offer_id: str, owner: int, **fields):
    from offers.models import OwnedOffer

    return OwnedOffer.objects.create(owner_id=owner, **offer_values(offer_id, **fields))


@pytest.fixture
def three_owners(transactional_db) -> list[int]:
    """Three API keys' ids (keys stored as `create_api_key` stores them)."""
    return [owner_of(make_key("pro", f"owner {n}")) for n in range(3)]


def integrate(env: VaultTestServer, owner: int, provider: str = "vastai", key: str = REPLAY_KEY) -> None:
    """An integration as `POST /api/v1/integrations` leaves it (its key in Vault, its row)."""
    from integrations.models import Integration

    CredentialsVaultHook(settings.VAULT_CONN_ID).store(owner, provider, {"api_key": key})
    Integration.objects.create(key_id=owner, provider=provider, status="ok", last_checked=NOW)


async def test_a_sync_with_an_integration_lands_offers_that_only_its_owner_sees(api, webapp, unlimited_key, env, pg):
    owner = await key_id(unlimited_key)
    other_key = await sync_to_async(make_key)("pro")
    await sync_to_async(integrate)(env, owner)
    await sync_to_async(offer_row("public-1").save)()
    await sync_to_async(owned_row)("theirs-1", await key_id(other_key))

    summary = await asyncio.to_thread(provider_integrations.sync_integration, owner, "vastai")
    assert (summary["landed"], summary["credentials"]) == (10, "vault")
    assert REPLAY_KEY not in json.dumps(summary)
    assert pg.execute("SELECT count(*) FROM owned_offers WHERE owner_id = %s", (owner,)).fetchone()[0] == 10
    assert pg.execute("SELECT count(*) FROM offers").fetchone()[0] == 1  # nothing public landed
    assert pg.execute("SELECT count(*) FROM event_outbox").fetchone()[0] == 0  # nor any public event
    assert pg.execute("SELECT status, message FROM integrations WHERE key_id = %s", (owner,)).fetchone() == ("ok", "10 offers landed")

    mine = await api.get(f"{INTEGRATIONS}/offers", params={"per_page": 100})
    assert mine.status_code == 200, mine.text
    assert mine.headers["cache-control"] == "private, no-store" and "x-cache" not in mine.headers
    owned = sorted(i["offer_id"] for i in mine.json()["items"] if i["owned"])
    assert len(owned) == 10 and "theirs-1" not in mine.text
    assert [i["offer_id"] for i in mine.json()["items"] if not i["owned"]] == ["public-1"]

    theirs = await webapp.get(f"{INTEGRATIONS}/offers", headers={"Authorization": f"Bearer {other_key}"})
    assert sorted(i["offer_id"] for i in theirs.json()["items"]) == ["public-1", "theirs-1"]
    public = await api.get("/api/v1/offers", params={"per_page": 100})
    assert [i["offer_id"] for i in public.json()["items"]] == ["public-1"]


async def test_cached_and_concurrent_answers_never_mix_owners(api, webapp, unlimited_key, env):
    owners = {unlimited_key: await key_id(unlimited_key)}
    for _ in range(2):
        key = await sync_to_async(make_key)("unlimited")
        owners[key] = await key_id(key)
    for n, owner in enumerate(owners.values()):
        await sync_to_async(owned_row)(f"own-{n}", owner, price=f"0.{n + 1}0")
    await sync_to_async(offer_row("public-1").save)()

    async def ask(key: str | None, path: str) -> tuple[str | None, httpx.Response]:
        headers = {"Authorization": f"Bearer {key}" if key else ""}
        return key, await webapp.get(path, params={"gpu": "H100"}, headers=headers)

    asks = [ask(key, f"{INTEGRATIONS}/offers") for key in owners for _ in range(8)]
    asks += [ask(key, "/api/v1/offers") for key in [*owners, None] for _ in range(4)]
    for key, answer in await asyncio.gather(*asks):
        assert answer.status_code == 200, answer.text
        ids = {i["offer_id"] for i in answer.json()["items"]}
        if "/integrations/" in str(answer.url):
            assert ids == {"public-1", f"own-{list(owners).index(key)}"}
        else:
            assert ids == {"public-1"}  # the shared, cached public answer holds nobody's own offers


async def test_an_owner_sync_never_falls_back_to_the_pipelines_key(api, unlimited_key, env, replay, pg, monkeypatch):
    from integrations.models import Integration

    owner = await key_id(unlimited_key)
    vendor_connection(monkeypatch, replay, REPLAY_KEY)  # a valid key, the pipeline's
    await Integration.objects.acreate(key_id=owner, provider="vastai", status="ok", last_checked=NOW)
    with pytest.raises(CredentialNotFound):
        await asyncio.to_thread(provider_integrations.sync_integration, owner, "vastai")
    await sync_to_async(CredentialsVaultHook(settings.VAULT_CONN_ID).store)(owner, "vastai", {"api_key": WRONG})
    with pytest.raises(provider_integrations.VendorError, match="invalid"):
        await asyncio.to_thread(provider_integrations.sync_integration, owner, "vastai")
    assert pg.execute("SELECT count(*) FROM owned_offers").fetchone()[0] == 0
    assert pg.execute("SELECT status FROM integrations WHERE key_id = %s", (owner,)).fetchone() == ("invalid",)
    with pytest.raises(provider_integrations.IntegrationNotFound):
        await asyncio.to_thread(provider_integrations.sync_integration, owner, "lambda")


async def test_an_owner_sync_reads_its_key_from_the_shared_cache_while_vault_is_down(api, unlimited_key, env):
    owner = await key_id(unlimited_key)
    await sync_to_async(integrate)(env, owner)
    first = await asyncio.to_thread(provider_integrations.sync_integration, owner, "vastai")
    assert first["credentials"] == "vault"
    env.server.sealed = True  # another task process, within the hour: the encrypted copy in Redis serves
    again = await asyncio.to_thread(provider_integrations.sync_integration, owner, "vastai")
    assert (again["credentials"], again["landed"]) == ("vault-cache", 10)


def test_a_batch_of_one_owner_touches_no_other_owners_offers(pg, three_owners):
    a, b, _ = three_owners
    offers = [Offer.model_validate({f: v for f, v in offer_values(f"o-{n}").items() if f in Offer.model_fields}) for n in range(3)]
    assert store.land_owned(pg, a, "vastai", offers, NOW).offers == 3
    assert store.land_owned(pg, b, "vastai", offers[:1], NOW).offers == 1
    later = NOW.replace(hour=13)
    repriced = offers[0].model_copy(update={"price_per_hour": Decimal("2.50"), "observed_at": later})
    result = store.land_owned(pg, a, "vastai", [repriced], later)
    assert (result.offers, result.new, result.changed, result.vanished) == (1, 0, 1, 2)
    rows = pg.execute("SELECT owner_id, offer_id, availability, price_per_hour FROM owned_offers ORDER BY 1, 2").fetchall()
    assert rows == [(a, "o-0", "available", Decimal("2.5000")), (a, "o-1", "unavailable", Decimal("1.0000")),
                    (a, "o-2", "unavailable", Decimal("1.0000")), (b, "o-0", "available", Decimal("1.0000"))]  # fmt: skip
    with pytest.raises(ValueError, match="another provider"):
        store.land_owned(pg, a, "lambda", offers, later)


# --- the Vault operator and the DAGs ----------------------------------------------------------------


def test_the_vault_operator_stores_rotates_and_checks(env, replay, monkeypatch, isolated_redis):
    from airflow.sdk.exceptions import AirflowFailException

    from gpubroker_provider.operators import VaultCredentialOperator

    def run(action: str, **kwargs) -> dict:
        return VaultCredentialOperator(task_id=f"{action}-{uuid.uuid4().hex[:6]}", action=action, provider="vastai",
                                       **kwargs).execute({})  # fmt: skip

    pipeline = settings.VAULT_USER
    assert run("store") == {"owner": pipeline, "provider": "vastai", "version": 1, "changed": True}
    assert run("store") == {"owner": pipeline, "provider": "vastai", "version": 1, "changed": False}  # same key: kept
    assert env.secret(pipeline, "vastai").json()["data"]["data"] == {"api_key": PIPELINE_KEY}
    with pytest.raises(AirflowFailException, match="vastai refused the key of pipeline"):
        run("check")  # PIPELINE_KEY is not one the vendor takes
    vendor_connection(monkeypatch, replay, REPLAY_KEY)
    assert run("rotate") == {"owner": pipeline, "provider": "vastai", "version": 2, "changed": True}
    checked = run("check")
    assert (checked["owner"], checked["provider"], checked["status"]) == (pipeline, "vastai", "ok")
    with pytest.raises(CredentialNotFound, match="store it first"):
        run("rotate", owner="nobody-yet")
    assert REPLAY_KEY not in json.dumps(run("check"))
    with pytest.raises(ValueError, match="action must be one of store, rotate, check"):
        VaultCredentialOperator(task_id="x", action="read", provider="vastai")


def test_seeded_pipeline_keys_are_what_syncs_read_through_vault(env, monkeypatch):
    from gpubroker_provider.hooks.vault import vendor_api_key

    assert vendor_api_key("vastai").source == "connection"  # Vault holds nothing yet: the connection's key
    written = provider_integrations.store_pipeline_keys()
    assert {written["vastai"], written["lambda"]} == {1}
    assert provider_integrations.store_pipeline_keys() == {}  # held already: nothing written again
    key = vendor_api_key("vastai")
    assert (key.source, key.api_key) == ("vault", PIPELINE_KEY)
    assert repr(key) == "VendorKey(source='vault')"


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_integrations_are_checked_then_synced_daily_and_a_sync_can_run_with_one(dags):
    daily = dags.dags["gpubroker_integrations"]
    assert daily.schedule == "40 4 * * *" and not daily.catchup
    check = daily.get_task("check")
    assert check.task_type == "VaultCredentialOperator" and check.partial_kwargs["action"] == "check"
    assert daily.get_task("sync").downstream_task_ids == set() and "accepted" in daily.get_task("sync").upstream_task_ids
    manual = dags.dags["gpubroker_data_sync"]
    schema = manual.params.get_param("integration").schema
    assert schema["required"] == ["owner", "provider"]
    assert set(schema["properties"]["provider"]["enum"]) == {s for s, v in VENDORS.items() if v.api_key_required}


# --- properties -------------------------------------------------------------------------------------

keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=5, max_size=64).map(lambda k: "sk-" + k)
faults = st.sampled_from(["none", "unavailable", "echoed in a 500", "echoed in a 403", "not the vendor's format"])


def injected(fault: str, key: str) -> list[dict]:
    """Replay-server faults for the vendor's next requests, some of them echoing the key back."""
    return {"none": [], "unavailable": [{"status": 503}] * 2,
            "echoed in a 500": [{"status": 500, "body": {"echo": key}}] * 2,
            "echoed in a 403": [{"status": 403, "body": {"error": f"{key} is not allowed"}}],
            "not the vendor's format": [{"status": 200, "body": "not json"}]}[fault]  # fmt: skip


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, fault=faults, action=st.sampled_from(["add", "test"]), sealed=st.booleans(), owner=st.integers(1, 10**6),
       provider=st.sampled_from(["vastai", "lambda"]))
def test_no_vendor_key_is_ever_in_an_outcome_a_status_a_log_line_or_an_error(env, replay, isolated_redis, caplog, capsys,
                                                                            key, fault, action, sealed, owner, provider):  # fmt: skip
    """**Feature: provider-api-gateway, Property 19: Credential Security** — whatever the vendor answers
    (even echoing the key back), whether Vault serves or is sealed: the key is in no Outcome, status
    message, log line or exception."""
    replay.reset()
    isolated_redis.flushdb()  # no breaker opened by an earlier example's faults
    replay.faults(provider, *injected(fault, key))
    env.server.sealed = False
    if action == "test":
        CredentialsVaultHook(settings.VAULT_CONN_ID).store(owner, provider, {"api_key": key})
    env.server.sealed = sealed
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        try:
            outcome = provider_integrations.run(action, Request(owner=owner, provider=provider, api_key=key))
            said = outcome.model_dump_json() + repr(outcome)
        except Exception as error:  # noqa: BLE001 - any error's text must be clean too
            said = f"{error!s} {error!r} {error.__cause__!r}"
    out, err = capsys.readouterr()
    assert key not in said + caplog.text + out + err
    if not sealed and fault == "none" and action == "add":
        assert outcome.status.status == (Status.OK if key == REPLAY_KEY else Status.INVALID)
    env.server.sealed = False


@st.composite
def catalogues(draw):
    """Public offers, and offers owned by owners 0..2 (index into the keys made for the test)."""
    gpus_, regions_ = ["H100", "A100", "RTX4090"], ["Norway", "Texas", "Tokyo"]
    rows = []
    for n in range(draw(st.integers(0, 12))):
        rows.append({"owner": draw(st.sampled_from([None, 0, 1, 2])), "offer_id": f"o-{draw(st.integers(0, 5))}-{n % 3}",
                     "gpu": draw(st.sampled_from(gpus_)), "region": draw(st.sampled_from(regions_)),
                     "price": f"{draw(st.integers(1, 900)) / 100:.2f}"})  # fmt: skip
    return rows


queries = st.builds(
    search.OfferQuery,
    gpu=st.sampled_from([None, "H100", "A100"]),
    region=st.sampled_from([None, "Norway", "tokyo"]),
    max_price=st.sampled_from([None, 1.0, 5.0]),
    sort=st.sampled_from(list(search.Sort)),
    per_page=st.sampled_from([1, 3, 500]),
)


# Property (beside the contract's 20): owner isolation of offers (the search never answers another
# owner's offer, and an owner's answer hides none of the public ones)
@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogue=catalogues(), query=queries, asker=st.sampled_from([None, 0, 1, 2]))
def test_no_search_answer_ever_holds_another_owners_offer(pg, three_owners, catalogue, query, asker):
    pg.execute("DELETE FROM owned_offers")
    pg.execute("DELETE FROM offers")
    seen_public, seen_owned = set(), set()
    for r in catalogue:
        fields = offer_values(r["offer_id"], gpu=r["gpu"], region=r["region"], price=r["price"])
        columns = ", ".join(fields)
        values = ", ".join(["%s"] * len(fields))
        if r["owner"] is None and r["offer_id"] not in seen_public:
            seen_public.add(r["offer_id"])
            pg.execute(f"INSERT INTO offers ({columns}) VALUES ({values})", list(fields.values()))
        elif r["owner"] is not None and (r["owner"], r["offer_id"]) not in seen_owned:
            seen_owned.add((r["owner"], r["offer_id"]))
            pg.execute(f"INSERT INTO owned_offers (owner_id, {columns}) VALUES (%s, {values})",
                       [three_owners[r["owner"]], *fields.values()])  # fmt: skip
    owner = None if asker is None else three_owners[asker]
    asked = query.model_copy(update={"page": 1})
    found = search.build(asked, VENDORS, owner)
    rows = pg.execute(found.sql, found.params).fetchall()
    names = [d.name for d in pg.execute(found.sql, found.params).description]
    answer = [dict(zip(names, r)) for r in rows]
    assert all(a.get("owner") in (None, owner) for a in answer)  # never another owner's
    public = search.build(asked.model_copy(update={"per_page": search.MAX_PER_PAGE}), VENDORS)
    everything = search.build(asked.model_copy(update={"per_page": search.MAX_PER_PAGE}), VENDORS, owner)
    public_ids = {r[1] for r in pg.execute(public.sql, public.params).fetchall()}
    all_rows = [dict(zip(names, r)) for r in pg.execute(everything.sql, everything.params).fetchall()]
    assert {a["offer_id"] for a in all_rows if a.get("owner") is None} == public_ids  # hides no public offer
    if owner is not None and asked.gpu is None and asked.region is None and asked.max_price is None:
        mine = {o for (who, o) in seen_owned if three_owners[who] == owner}
        assert {a["offer_id"] for a in all_rows if a["owner"] == owner} == mine  # and shows all of its own
