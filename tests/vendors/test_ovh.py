"""OVHcloud hook against the recorded public catalogue served over real HTTP by the replay server."""

import copy
from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker.fx import EUR_USD
from gpubroker_provider.hooks.ovh import OvhHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording


def hook(replay) -> OvhHook:
    return OvhHook(base_url=replay.vendor_url("ovh"))  # public API: no key


def addon(catalog, plan_code):
    return next(a for a in catalog["addons"] if a["planCode"] == plan_code)


def test_gpu_flavors_become_one_offer_per_orderable_region(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 1
    assert set(by_id(batch)) == {
        "h100-380:GRA11", "h100-380:BHS5",  # regions only on the monthly plan
        "h100-760:GRA11", "h100-760:EU-WEST-PAR",
        "a100-180:GRA11", "a100-180:BHS5", "l40s-90:GRA11", "l40s-90:UK1", "l4-90:GRA11", "l4-90:WAW1",
        "t2-45:GRA9", "t2-45:BHS5", "t2-45:DE1", "rtx5000-28:GRA7",
    }
    assert not batch.memory_mismatches
    assert batch.unknown_gpus == {}


def test_cpu_flavors_and_flavors_without_regions_are_left_out(replay):
    batch = hook(replay).fetch_batch()
    flavors = {o.instance_type for o in batch.offers}
    assert "b3-8" not in flavors  # no gpu in blobs.technical
    assert "l40s-180" not in flavors  # no region on any of its plans
    assert "volume.high-speed-gen2" not in flavors  # not an instance addon


def test_a_gpu_the_registry_does_not_know_is_counted_not_dropped(replay):
    catalog = copy.deepcopy(recording("ovh", "catalog-fr.json"))
    gpu = addon(catalog, "rtx5000-28.consumption")["blobs"]["technical"]["gpu"]
    gpu.update(model="Quadro P4000", memory={"size": 8})
    replay.put("ovh", "catalog-fr.json", catalog)
    batch = hook(replay).fetch_batch()
    assert batch.unknown_gpus == {"Quadro P4000": 1}
    assert "rtx5000-28" not in {o.instance_type for o in batch.offers}
    assert len(batch.offers) == 13  # every other GPU flavor and region is still an offer


def test_micro_cent_eur_prices_are_converted_to_usd(replay):
    assert EUR_USD == Decimal("1.16")
    offers = by_id(hook(replay).fetch_batch())
    h100 = offers["h100-380:BHS5"]
    # 280000000 x 10^-8 EUR = EUR 2.80 an hour (the monthly plan's price is not used) x 1.16
    assert h100.price_per_hour == Decimal("3.2480")
    assert (h100.gpu_model, h100.gpu_count, h100.gpu_memory_gb) == ("H100", 1, 80.0)
    assert (h100.vcpus, h100.ram_gb, h100.disk_gb) == (30, 380.0, 4040.0)
    assert (h100.country, h100.continent, h100.availability) == ("CA", "NA", "unknown")

    two = offers["h100-760:EU-WEST-PAR"]
    assert (two.gpu_count, two.gpu_memory_gb, str(two.price_per_hour), two.country) == (2, 80.0, "6.4960", "FR")
    assert offers["l4-90:GRA11"].price_per_hour == Decimal("0.8700")  # 75000000 -> EUR 0.75

    quadro = offers["rtx5000-28:GRA7"]  # "Quadro RTX 5000"
    assert (quadro.gpu_model, quadro.gpu_count, quadro.gpu_memory_gb) == ("QUADRORTX5000", 1, 16.0)
    assert quadro.price_per_hour == Decimal("0.4176")  # 36000000 -> EUR 0.36 x 1.16
    assert (quadro.vcpus, quadro.ram_gb, quadro.disk_gb, quadro.country) == (4, 28.0, 400.0, "FR")


def test_region_codes_map_to_countries(replay):
    offers = by_id(hook(replay).fetch_batch())
    countries = {region: offers[f"t2-45:{region}"].country for region in ("GRA9", "BHS5", "DE1")}
    assert countries == {"GRA9": "FR", "BHS5": "CA", "DE1": "DE"}
    assert (offers["l40s-90:UK1"].country, offers["l4-90:WAW1"].country) == ("GB", "PL")
    v100s = offers["t2-45:DE1"]
    assert (v100s.gpu_model, v100s.gpu_memory_gb) == ("V100", 32.0)


def test_a_usd_catalogue_is_used_as_is(replay):
    catalog = copy.deepcopy(recording("ovh", "catalog-fr.json"))
    catalog["locale"] = {"currencyCode": "USD", "subsidiary": "US", "taxRate": 0}
    replay.put("ovh", "catalog-fr.json", catalog)
    assert by_id(hook(replay).fetch_batch())["a100-180:GRA11"].price_per_hour == Decimal("2.7500")


@pytest.mark.parametrize(
    "mutate",
    [lambda body: body.pop("addons"), lambda body: body["locale"].update(currencyCode="JPY")],
    ids=["no-addons", "unknown-currency"],
)
def test_a_wrong_envelope_rejects_the_whole_batch(replay, mutate):
    body = copy.deepcopy(recording("ovh", "catalog-fr.json"))
    mutate(body)
    replay.put("ovh", "catalog-fr.json", body)
    with pytest.raises(PayloadError, match="ovh: malformed payload"):
        hook(replay).fetch_batch()


def test_a_broken_plan_is_dropped_with_its_reason_and_its_flavor_keeps_the_others(replay):
    def mutate(body):
        addon(body, "a100-180.consumption")["pricings"][0].update(price=2.75)  # not 10^-8 units
        addon(body, "h100-380.monthly.postpaid")["configurations"][0].update(values=["GRA11", None])

    whole, broken = with_one_item_broken(replay, hook, "ovh", "catalog-fr.json", mutate)
    assert broken.dropped == {"TypeError: price 2.75 is not an integer of 10^-8 currency units": 1,
                              "region values are not names": 1}  # fmt: skip
    # a100-180 had one plan; h100-380 loses the regions its monthly plan named, keeps its hourly price
    assert lost(whole, broken) == {"a100-180:GRA11", "a100-180:BHS5", "h100-380:GRA11", "h100-380:BHS5"}


def test_storage_and_cpu_addons_are_skipped_and_gpu_memory_not_stated_comes_from_the_registry(replay):
    body = copy.deepcopy(recording("ovh", "catalog-fr.json"))
    addon(body, "l4-90.consumption")["blobs"]["technical"]["gpu"].pop("memory")
    replay.put("ovh", "catalog-fr.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.skipped == {"not an instance plan (storage, network, ...)": 1, "CPU instance flavor": 1,
                             "orderable in no region": 1}  # l40s-180: no region on any of its plans
    l4 = by_id(batch)["l4-90:GRA11"]
    assert (l4.gpu_memory_gb, l4.inferred) == (24, ("gpu_memory_gb",))


def test_a_flavor_sold_only_monthly_is_counted_not_lost(replay):
    body = copy.deepcopy(recording("ovh", "catalog-fr.json"))
    body["addons"] = [a for a in body["addons"] if a["planCode"] != "h100-380.consumption"]
    replay.put("ovh", "catalog-fr.json", body)
    batch = hook(replay).fetch_batch()
    assert batch.skipped["monthly plans only: no hourly (on-demand) price"] == 1
    assert not any(o.instance_type == "h100-380" for o in batch.offers)
