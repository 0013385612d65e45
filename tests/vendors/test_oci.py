"""Oracle Cloud hook (public price list, cetools products API) against recordings served over HTTP."""

import copy

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.oci import DEFAULT_REGIONS, SHAPES, OciHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording

PRODUCTS = "products.json"


def hook(replay, **kwargs) -> OciHook:
    return OciHook(base_url=replay.vendor_url("oci"), api_key=None, **kwargs)


def products():
    return copy.deepcopy(recording("oci", PRODUCTS))


def item(body, part):
    return next(i for i in body["items"] if i["partNumber"] == part)


def test_one_offer_per_shape_per_region(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 1  # the live price list is one document
    assert len(batch.offers) == len(SHAPES) * len(DEFAULT_REGIONS) == 45
    assert {o.instance_type for o in batch.offers} == set(SHAPES)
    assert {o.region for o in batch.offers} == set(DEFAULT_REGIONS)
    assert all(o.availability == "unknown" and o.spot_price is None for o in batch.offers)


def test_price_is_per_gpu_hour_times_gpu_count(replay):
    offers = by_id(hook(replay).fetch_batch())
    expected = {  # USD/hour for the whole shape
        "BM.GPU.H100.8": "80.0000",  # 8 x $10
        "BM.GPU.H200.8": "80.0000",  # 8 x $10
        "BM.GPU.A100-v2.8": "32.0000",  # 8 x $4
        "BM.GPU4.8": "24.4000",  # 8 x $3.05
        "BM.GPU.MI300X.8": "48.0000",  # 8 x $6
        "BM.GPU.L40S-NC.4": "14.0000",  # 4 x $3.50
        "BM.GPU.A10.4": "8.0000",  # 4 x $2
        "VM.GPU.A10.2": "4.0000",
        "VM.GPU.A10.1": "2.0000",
    }
    for shape, price in expected.items():
        for region in DEFAULT_REGIONS:  # one global list price
            assert str(offers[f"{shape}:{region}"].price_per_hour) == price, (shape, region)


def test_gpu_identity_memory_and_host_specs(replay):
    offers = by_id(hook(replay).fetch_batch())
    h100 = offers["BM.GPU.H100.8:us-ashburn-1"]
    assert (h100.gpu_model, h100.gpu_form_factor, h100.gpu_count, h100.gpu_memory_gb) == ("H100", "SXM", 8, 80)
    assert (h100.vcpus, h100.ram_gb, h100.cpu_arch) == (224, 2048, "x86_64")  # 112 OCPUs = 224 vCPUs
    a100_40 = offers["BM.GPU4.8:us-ashburn-1"]
    a100_80 = offers["BM.GPU.A100-v2.8:us-ashburn-1"]
    assert (a100_40.gpu_model, a100_40.gpu_memory_gb, a100_40.vcpus) == ("A100", 40, 128)
    assert (a100_80.gpu_model, a100_80.gpu_memory_gb, a100_80.vcpus) == ("A100", 80, 256)
    mi300x = offers["BM.GPU.MI300X.8:eu-frankfurt-1"]
    assert (mi300x.gpu_model, mi300x.gpu_vendor, mi300x.gpu_memory_gb) == ("MI300X", "AMD", 192)
    h200 = offers["BM.GPU.H200.8:eu-frankfurt-1"]
    assert (h200.gpu_model, h200.gpu_memory_gb, h200.ram_gb) == ("H200", 141, 3072)
    l40s = offers["BM.GPU.L40S-NC.4:uk-london-1"]
    assert (l40s.gpu_model, l40s.gpu_count, l40s.gpu_memory_gb) == ("L40S", 4, 48)
    a10 = offers["VM.GPU.A10.1:ap-tokyo-1"]
    assert (a10.gpu_model, a10.gpu_count, a10.gpu_memory_gb, a10.vcpus, a10.ram_gb) == ("A10", 1, 24, 30, 240)


def test_country_and_continent_per_region(replay):
    offers = by_id(hook(replay).fetch_batch())
    where = {r: (offers[f"VM.GPU.A10.1:{r}"].country, offers[f"VM.GPU.A10.1:{r}"].continent) for r in DEFAULT_REGIONS}
    assert where == {
        "us-ashburn-1": ("US", "NA"),
        "us-chicago-1": ("US", "NA"),
        "eu-frankfurt-1": ("DE", "EU"),
        "uk-london-1": ("GB", "EU"),
        "ap-tokyo-1": ("JP", "AS"),
    }


def test_regions_are_configurable(replay):
    batch = hook(replay, regions=["ap-osaka-1", "me-jeddah-1"]).fetch_batch()
    assert {(o.region, o.country) for o in batch.offers} == {("ap-osaka-1", "JP"), ("me-jeddah-1", "SA")}
    assert len(batch.offers) == 2 * len(SHAPES)


def test_non_gpu_licence_and_unmapped_parts_are_skipped(replay):
    batch = hook(replay).fetch_batch()
    # H100T bills GPU-hours but no shape in the table uses it: counted, never guessed into H100.
    assert batch.unknown_gpus == {"OCI - Compute - GPU - H100T (B109480)": 1}
    # OCPU / memory / storage / VMware per-node rows and the AI Enterprise licence add nothing.
    assert not batch.memory_mismatches
    assert {o.instance_type for o in batch.offers} == set(SHAPES)  # no BM.GPU.A10.64 VMware node
    assert {str(o.price_per_hour) for o in batch.offers} == {
        "80.0000", "32.0000", "24.4000", "48.0000", "14.0000", "8.0000", "4.0000", "2.0000",
    }


def test_zero_or_missing_price_skips_the_shapes_billed_by_that_part(replay):
    body = products()
    item(body, "B95909")["currencyCodeLocalizations"][0]["prices"][0]["value"] = 0  # A10 at $0
    item(body, "B109485")["currencyCodeLocalizations"][0]["prices"] = []  # MI300X unpriced
    body["items"] = [i for i in body["items"] if i["partNumber"] != "B110519"]  # H200 part withdrawn
    replay.put("oci", PRODUCTS, body)
    batch = hook(replay).fetch_batch()
    shapes = {o.instance_type for o in batch.offers}
    assert shapes == set(SHAPES) - {
        "BM.GPU.A10.4", "VM.GPU.A10.2", "VM.GPU.A10.1", "BM.GPU.MI300X.8", "BM.GPU.H200.8",
    }
    assert batch.skipped["GPU part without a positive pay-as-you-go price (not sold on demand)"] == 2  # counted


def test_price_change_moves_every_shape_of_the_part(replay):
    body = products()
    item(body, "B98415")["currencyCodeLocalizations"][0]["prices"][0]["value"] = 6.75
    replay.put("oci", PRODUCTS, body)
    offers = by_id(hook(replay).fetch_batch())
    assert str(offers["BM.GPU.H100.8:uk-london-1"].price_per_hour) == "54.0000"


def test_next_link_is_followed(replay):
    body = products()
    body.update(hasMore=True, links=[
        {"rel": "self", "href": "https://apexapps.oracle.com/pls/apex/cetools/api/v1/products/?currencyCode=USD"},
        {"rel": "next", "href": "https://apexapps.oracle.com/pls/apex/cetools/api/v1/products/?currencyCode=USD&offset=500"},
    ])
    replay.put("oci", PRODUCTS, body)
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2
    assert batch.unknown_gpus == {  # the B200 part is on page 2
        "OCI - Compute - GPU - H100T (B109480)": 1, "OCI - Compute - GPU - B200 (B110978)": 1,
    }
    assert len(batch.offers) == len(SHAPES) * len(DEFAULT_REGIONS)


def test_the_key_is_never_sent_to_a_public_api():
    assert OciHook(base_url="http://x", api_key="sk-secret").client().headers.get("Authorization") is None


@pytest.mark.parametrize(
    "mutate", [lambda body: body.pop("items"), lambda body: body.update(hasMore=True)],
    ids=["no-items", "has-more-without-next-link"],
)
def test_a_wrong_envelope_rejects_the_whole_batch(replay, mutate):
    body = products()
    mutate(body)
    replay.put("oci", PRODUCTS, body)
    with pytest.raises(PayloadError, match="oci: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason", "shapes"),
    [
        # a part a shape uses, metered per OCPU-hour: multiplying it by the GPU count would be wrong
        (lambda body: item(body, "B98415").update(metricName="OCPU Per Hour"),
         "a shape's part metered 'OCPU Per Hour', not 'GPU Per Hour'", {"BM.GPU.H100.8"}),
        (lambda body: item(body, "B95907")["currencyCodeLocalizations"][0].update(currencyCode="EUR"),
         "expected one USD price list, got 0", {"BM.GPU.A100-v2.8"}),
        (lambda body: item(body, "B95907")["currencyCodeLocalizations"][0]["prices"].append(
            {"model": "PAY_AS_YOU_GO", "value": 3.2}), "2 PAY_AS_YOU_GO prices", {"BM.GPU.A100-v2.8"}),
        (lambda body: item(body, "B109479")["currencyCodeLocalizations"][0]["prices"][0].update(value="3.50"),
         "price is not a number", {"BM.GPU.L40S-NC.4"}),
        (lambda body: body["items"].append(copy.deepcopy(item(body, "B98415"))), "part listed twice", set()),
    ],
    ids=["gpu-part-not-per-gpu-hour", "no-usd", "two-payg-prices", "price-as-string", "duplicate-part"],
)
def test_a_broken_part_is_dropped_and_only_its_shapes_go_unpriced(replay, mutate, reason, shapes):
    whole, broken = with_one_item_broken(replay, hook, "oci", PRODUCTS, mutate)
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {o.offer_id for o in whole.offers if o.instance_type in shapes}


def test_other_parts_are_skipped_not_dropped(replay):
    batch = hook(replay).fetch_batch()
    assert batch.skipped["not a GPU capacity part (OCPU, memory, storage, licences, ...)"] >= 3 and not batch.dropped


def test_a_price_list_in_every_currency_is_read_in_usd(replay):
    usd = {o.offer_id: o.price_per_hour for o in hook(replay).fetch_batch().offers}
    replay.put("oci", PRODUCTS, recording("oci", "variant-all-currencies.json"))
    assert {o.offer_id: o.price_per_hour for o in hook(replay).fetch_batch().offers} == usd
