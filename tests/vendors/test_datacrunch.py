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
    assert len(batch.offers) == 11
    assert batch.unknown_gpus == {"Tesla P40 24GB": 1}  # counted, not guessed
    assert "1P40.10V@FIN-03" not in by_id
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
    assert len(hook(oauth, key=CREDENTIALS).fetch_batch().offers) == 11


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


@pytest.mark.parametrize(
    ("payload", "mutate"),
    [
        ("instance-types.json", lambda body: body[1]["gpu"].update(description="H100 SXM5 80GB")),
        ("instance-types.json", lambda body: body[2]["gpu"].update(number_of_gpus=4)),
        ("instance-types.json", lambda body: body[1].update(price_per_hour="2,29")),
        ("instance-availability.json", lambda body: body[0].update(location_code="FIN-09")),
        ("locations.json", lambda body: body.clear() or body.append({"code": "FIN-01"})),
    ],
    ids=["no-count-prefix", "gpu-count-disagrees", "price-not-a-number", "unknown-location", "location-without-country"],
)
def test_malformed_payload_rejects_the_whole_batch(replay, payload, mutate):
    body = copy.deepcopy(recording("datacrunch", payload))
    mutate(body)
    replay.put("datacrunch", payload, body)
    with pytest.raises(PayloadError, match="datacrunch: malformed payload"):
        hook(replay).fetch_batch()
