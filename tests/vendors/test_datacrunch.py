"""DataCrunch hook against recorded payloads served over real HTTP by the replay server.

The shared replay server checks one auth style per vendor (here the Bearer token on the listing
calls), so the OAuth token call is exercised on a private replay server whose manifest does not
check auth: the token it hands out must then be what the listing calls carry.
"""

import copy
import json
import shutil
import threading
import time

import pytest
import uvicorn

from gpubroker.schema import Availability
from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.datacrunch import DataCrunchHook
from gpubroker_provider.replay.server import create_app
from tests.vendors import lost, with_one_item_broken
from tests.conftest import RECORDINGS, REPLAY_KEY, Replay, recording

SECRET = "dc-secret-8f3a9c"
CREDENTIALS = f"gbroker-client-01:{SECRET}"


def hook(replay, key=REPLAY_KEY) -> DataCrunchHook:
    return DataCrunchHook(base_url=replay.vendor_url("datacrunch"), api_key=key)


@pytest.fixture(scope="module")
def oauth_replay(tmp_path_factory):
    root = tmp_path_factory.mktemp("recordings")
    shutil.copytree(RECORDINGS / "datacrunch", root / "datacrunch")
    manifest = json.loads((root / "datacrunch" / "manifest.json").read_text())
    (root / "datacrunch" / "manifest.json").write_text(json.dumps(manifest | {"auth": None}))
    server = uvicorn.Server(uvicorn.Config(create_app(REPLAY_KEY, root), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    replay = Replay(f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}")
    yield replay
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def oauth(oauth_replay):
    oauth_replay.reset()
    yield oauth_replay
    oauth_replay.reset()


def test_instance_types_by_location(replay):
    batch = hook(replay).fetch_batch()
    by_id = {o.offer_id: o for o in batch.offers}
    assert batch.pages == 3
    assert len(batch.offers) == 12
    assert batch.unknown_gpus == {}
    p40 = by_id["1P40.10V@FIN-03"]
    assert (p40.gpu_model, p40.gpu_memory_gb, str(p40.price_per_hour), str(p40.spot_price)) == ("P40", 24.0, "0.2900", "0.1200")
    assert not any(o.instance_type.startswith("CPU.") for o in batch.offers)  # CPU-only type skipped

    h100 = by_id["8H100.80S.176V@FIN-01"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count) == ("H100", "SXM", 8)
    assert h100.gpu_memory_gb == 80  # gpu_memory.size_in_gigabytes is 640 for the 8 GPUs
    assert str(h100.price_per_hour) == "18.3200" and str(h100.spot_price) == "7.9200"  # "18.32" string, whole instance
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (176, 1480, None)
    assert (h100.region, h100.country, h100.continent) == ("FIN-01", "FI", "EU")

    v100 = by_id["4V100.20V@ICE-01"]
    assert (v100.gpu_model, v100.gpu_count, v100.gpu_memory_gb, str(v100.price_per_hour)) == ("V100", 4, 16, "0.5600")
    assert v100.country == "IS"  # from /v1/locations, not guessed from "ICE-01"
    assert {o.region for o in batch.offers if o.instance_type == "1H100.80S.30V"} == {"FIN-01", "FIN-02"}
    assert by_id["1RTX6000ADA.10V@FIN-02"].gpu_model == "RTX6000ADA"

    b300 = by_id["8B300.240V@FIN-02"]
    assert (b300.gpu_model, b300.gpu_form_factor, b300.gpu_count, b300.gpu_memory_gb) == ("B300", "SXM", 8, 262)
    assert (str(b300.price_per_hour), str(b300.spot_price)) == ("39.9200", "15.9200")  # whole instance
    assert (b300.vcpus, b300.ram_gb, b300.region, b300.country) == (240, 2400, "FIN-02", "FI")


def test_type_available_nowhere_is_listed_unavailable(replay):
    by_id = {o.offer_id: o for o in hook(replay).fetch_batch().offers}
    a100 = by_id["1A100.40S.22V@none"]
    assert (a100.availability, a100.region, a100.country, a100.gpu_memory_gb) == (Availability.UNAVAILABLE, "unknown", None, 40)
    assert all(o.availability == Availability.AVAILABLE for k, o in by_id.items() if not k.endswith("@none"))


def test_client_credentials_are_exchanged_for_a_bearer_token(oauth):
    datacrunch = hook(oauth, key=CREDENTIALS)
    with datacrunch.client() as client:
        assert "Authorization" not in client.headers
        pages = list(datacrunch.fetch_pages(client))
        assert client.headers["Authorization"] == f"Bearer {recording('datacrunch', 'token.json')['access_token']}"
    assert len(pages) == 3
    assert len(hook(oauth, key=CREDENTIALS).fetch_batch().offers) == 12


def test_rejected_credentials_end_in_the_vendors_error_without_the_secret(oauth):
    oauth.faults("datacrunch", {"status": 401, "body": {"code": "unauthorized_request", "message": "Invalid client credentials"}})
    with pytest.raises(VendorError, match="POST /v1/oauth2/token -> HTTP 401") as error:
        hook(oauth, key=CREDENTIALS).fetch_batch()
    assert SECRET not in str(error.value)


def test_token_answer_without_access_token_is_malformed(oauth):
    oauth.put("datacrunch", "token.json", {"code": "invalid_request", "message": "grant_type must be client_credentials"})
    with pytest.raises(PayloadError, match="datacrunch: malformed payload: token answer") as error:
        hook(oauth, key=CREDENTIALS).fetch_batch()
    assert SECRET not in str(error.value)


def test_a_wrong_envelope_rejects_the_whole_batch(replay):
    replay.put("datacrunch", "instance-types.json", {"instance_types": recording("datacrunch", "instance-types.json")})
    with pytest.raises(PayloadError, match="datacrunch: malformed payload: expected three JSON lists"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("payload", "mutate", "reason", "lost_ids"),
    [
        ("instance-types.json", lambda body: body[1]["gpu"].update(description="H100 SXM5 80GB"),
         "unparseable gpu description 'H100 SXM5 80GB'", {"1H100.80S.30V@FIN-01", "1H100.80S.30V@FIN-02"}),
        ("instance-types.json", lambda body: body[2]["gpu"].update(number_of_gpus=4),
         "GPU count disagrees with the GPU description", {"8H100.80S.176V@FIN-01"}),
        ("instance-types.json", lambda body: body[1].update(price_per_hour="2,29"),
         "could not convert string to float: '2,29'", {"1H100.80S.30V@FIN-01", "1H100.80S.30V@FIN-02"}),
    ],
    ids=["no-count-prefix", "gpu-count-disagrees", "price-not-a-number"],
)
def test_a_broken_row_is_dropped_with_its_reason_and_the_rest_land(replay, payload, mutate, reason, lost_ids):
    whole, broken = with_one_item_broken(replay, hook, "datacrunch", payload, mutate)
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == lost_ids & {o.offer_id for o in whole.offers}


def test_an_availability_row_at_an_unknown_location_is_dropped_and_its_types_are_listed_unavailable(replay):
    whole, broken = with_one_item_broken(
        replay, hook, "datacrunch", "instance-availability.json", lambda body: body[2].update(location_code="FIN-09"))
    assert broken.dropped == {"availability at an unknown location 'FIN-09'": 1}
    by_id = {o.offer_id: o for o in broken.offers}
    assert "1B200.31V@FIN-03" not in by_id and by_id["1B200.31V@none"].availability == Availability.UNAVAILABLE
    untouched = {o.offer_id for o in whole.offers if not o.offer_id.endswith("@FIN-03")}
    assert untouched <= set(by_id)


def test_a_location_without_a_country_is_dropped_with_the_availability_there(replay):
    whole, broken = with_one_item_broken(
        replay, hook, "datacrunch", "locations.json", lambda body: body[3].pop("country_code"))  # ICE-01
    assert broken.dropped == {"missing field 'country_code'": 1, "availability at an unknown location 'ICE-01'": 1}
    assert not any(o.offer_id.endswith("@ICE-01") for o in broken.offers)


def test_the_verda_layout_reads_currency_and_local_nvme(replay):
    replay.put("datacrunch", "instance-types.json", recording("datacrunch", "variant-verda-layout.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU-only instance type": 1} and not batch.dropped
    by_id = {o.offer_id: o for o in batch.offers}
    assert {o.availability for o in batch.offers} == {Availability.UNAVAILABLE}  # none listed as available
    h200 = by_id["8H200.141S.176V@none"]
    assert (h200.gpu_model, h200.gpu_count, h200.gpu_memory_gb, str(h200.price_per_hour)) == ("H200", 8, 141, "28.7200")
    v100 = by_id["1V100.6V@none"]
    assert (v100.disk_gb, str(v100.spot_price)) == (225, "0.1400")


def test_a_price_in_another_currency_is_dropped(replay):
    def mutate(body):
        body[0]["currency"] = "eur"

    replay.put("datacrunch", "instance-types.json", recording("datacrunch", "variant-verda-layout.json"))
    body = recording("datacrunch", "variant-verda-layout.json")
    mutate(body)
    replay.put("datacrunch", "instance-types.json", body)
    assert hook(replay).fetch_batch().dropped == {"prices in 'eur', not USD": 1}


def test_the_sdks_spellings_spot_price_per_hour_and_vendor_prefixed_descriptions(replay):
    replay.put("datacrunch", "instance-types.json", recording("datacrunch", "variant-sdk-names.json"))
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"CPU-only instance type": 1} and not batch.dropped and not batch.unknown_gpus
    by_id = {o.offer_id: o for o in batch.offers}
    assert set(by_id) == {"1H100.80S.30V@FIN-01", "1H100.80S.30V@FIN-02", "1A100.80S.22V@FIN-01",
                          "1A100.80S.22V@ICE-01", "2A6000.20V@none"}  # fmt: skip
    h100 = by_id["1H100.80S.30V@FIN-02"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 1, 80)
    assert (str(h100.price_per_hour), str(h100.spot_price), h100.vcpus, h100.ram_gb) == ("3.9500", "1.7000", 30, 120)
    assert h100.interconnect is None  # "SXM5" names the board, not the NVLink fabric
    a100 = by_id["1A100.80S.22V@ICE-01"]
    assert (a100.gpu_model, str(a100.price_per_hour), a100.spot_price, a100.country) == ("A100", "1.8900", None, "IS")
    a6000 = by_id["2A6000.20V@none"]  # listed nowhere as deployable
    assert (a6000.gpu_model, a6000.gpu_count, a6000.gpu_memory_gb, str(a6000.price_per_hour)) == ("RTXA6000", 2, 48, "1.9800")
    assert (str(a6000.spot_price), a6000.availability) == ("0.7000", Availability.UNAVAILABLE)


def test_a_gpu_the_registry_does_not_know_is_counted_not_guessed(replay):
    whole, renamed = with_one_item_broken(replay, hook, "datacrunch", "instance-types.json", lambda body: next(
        t for t in body if t["instance_type"] == "1P40.10V")["gpu"].update(description="1x Tesla M40 24GB"))
    assert renamed.unknown_gpus == {"Tesla M40 24GB": 1} and not renamed.dropped
    assert lost(whole, renamed) == {"1P40.10V@FIN-03"}
