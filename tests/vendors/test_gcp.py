"""Google Cloud hook (Cloud Billing Catalog SKUs) against recorded pages served over HTTP."""

import copy

import pytest

from gpubroker_provider.hooks.base import PayloadError, VendorError
from gpubroker_provider.hooks.gcp import GcpHook
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import REPLAY_KEY, recording


def hook(replay, key=REPLAY_KEY, **kwargs) -> GcpHook:
    return GcpHook(base_url=replay.vendor_url("gcp"), api_key=key, **kwargs)


def test_both_pages_are_read_and_machine_types_assembled(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2
    assert sorted(by_id(batch)) == sorted([
        "a2-highgpu-1g:us-central1", "a2-highgpu-8g:us-central1", "a2-ultragpu-1g:us-central1",
        "a2-ultragpu-8g:us-central1", "a3-highgpu-8g:us-central1",  # H100 + A3 SKUs are on page 2
        "g2-standard-4:us-central1", "g2-standard-24:us-central1", "g2-standard-48:us-central1",
        "g2-standard-4:europe-west4", "g2-standard-24:europe-west4", "g2-standard-48:europe-west4",
        "a2-highgpu-1g:asia-northeast1", "a2-highgpu-8g:asia-northeast1", "a3-highgpu-8g:asia-northeast1",
    ])
    # us-east4 is not a configured region; N1/storage/commitment SKUs build no offer: the T4 SKU (a GPU
    # for custom N1 machines) is skipped, counted, and so is the storage SKU
    assert not batch.unknown_gpus and not batch.dropped
    assert batch.skipped == {"GPU SKU of no machine type priced here (N1-attachable GPUs, other families)": 1,
                             "not a machine-time SKU (another resource family, usage type or unit)": 1}


def test_price_is_gpus_plus_cores_plus_ram_from_units_and_nanos(replay):
    offers = by_id(hook(replay).fetch_batch())
    a2 = offers["a2-highgpu-1g:us-central1"]
    assert str(a2.price_per_hour) == "3.6734"  # 2.933908 + 12 x 0.031611 + 85 x 0.004237
    assert str(a2.spot_price) == "1.3954"  # the Spot Preemptible GPU, core and RAM SKUs
    assert (a2.gpu_model, a2.gpu_count, a2.gpu_memory_gb, a2.vcpus, a2.ram_gb) == ("A100", 1, 40, 12, 85)
    assert (a2.country, a2.continent) == ("US", "NA")

    ultra = offers["a2-ultragpu-8g:us-central1"]
    assert (ultra.gpu_model, ultra.gpu_count, ultra.gpu_memory_gb) == ("A100", 8, 80)
    a3 = offers["a3-highgpu-8g:us-central1"]
    assert (a3.gpu_model, a3.gpu_count, a3.gpu_memory_gb) == ("H100", 8, 80)
    assert str(a3.price_per_hour) == "92.0977" and a3.spot_price is None  # no A3 spot SKUs

    g2 = offers["g2-standard-4:us-central1"]
    assert (g2.gpu_model, str(g2.price_per_hour), str(g2.spot_price)) == ("L4", "0.7064", "0.2826")
    nl = offers["g2-standard-48:europe-west4"]
    assert (str(nl.price_per_hour), nl.spot_price, nl.country, nl.continent) == ("4.4038", None, "NL", "EU")
    jp = offers["a2-highgpu-8g:asia-northeast1"]
    assert (str(jp.price_per_hour), jp.country) == ("32.1578", "JP")
    a3_jp = offers["a3-highgpu-8g:asia-northeast1"]  # 8 x 11.06 + 208 x 0.038374 + 1872 x 0.003215
    assert (str(a3_jp.price_per_hour), a3_jp.gpu_count, a3_jp.vcpus, a3_jp.ram_gb) == ("102.4803", 8, 208, 1872)


def test_key_travels_as_query_parameter_and_bad_key_gets_googles_error(replay):
    assert hook(replay).client().params["key"] == REPLAY_KEY
    with pytest.raises(VendorError, match="HTTP 403: .*PERMISSION_DENIED") as error:
        hook(replay, key="AIza-wrong-key").fetch_batch()
    assert "AIza-wrong-key" not in str(error.value)


def test_regions_are_configurable(replay):
    batch = hook(replay, regions=["europe-west4"]).fetch_batch()
    assert {o.region for o in batch.offers} == {"europe-west4"} and len(batch.offers) == 3


def test_zero_priced_component_leaves_the_machine_unpriced(replay):
    body = copy.deepcopy(recording("gcp", "skus-2.json"))
    ram = next(s for s in body["skus"] if s["description"] == "G2 Instance Ram running in Netherlands")
    ram["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"].update(units="0", nanos=0)
    replay.put("gcp", "skus-2.json", body)
    assert not [o for o in hook(replay).fetch_batch().offers if o.region == "europe-west4"]


def test_a_page_without_skus_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("gcp", "skus-1.json"))
    body.pop("skus")
    replay.put("gcp", "skus-1.json", body)
    with pytest.raises(PayloadError, match="gcp: malformed payload"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda sku: sku["pricingInfo"][0]["pricingExpression"].pop("tieredRates"), "missing field 'tieredRates'"),
        (lambda sku: sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]["unitPrice"].update(units="two"),
         "invalid literal for int() with base 10: 'two'"),
        (lambda sku: sku.pop("category"), "missing field 'category'"),
    ],
    ids=["no-tiered-rates", "non-integer-units", "no-category"],
)
def test_a_broken_sku_is_dropped_and_only_the_machines_it_prices_go_unpriced(replay, mutate, reason):
    # skus-1.json's first SKU is the on-demand A100 40GB GPU in us-central1
    whole, broken = with_one_item_broken(replay, hook, "gcp", "skus-1.json", lambda body: mutate(body["skus"][0]))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"a2-highgpu-1g:us-central1", "a2-highgpu-8g:us-central1"}


def test_a_gpu_priced_without_its_machines_cores_is_dropped_with_that_reason(replay):
    whole, broken = with_one_item_broken(replay, hook, "gcp", "skus-2.json", lambda body: body["skus"].pop(13))
    assert whole.offers and broken.dropped == {"GPU priced in the region without its machine's core or RAM SKU": 1}
    assert lost(whole, broken) == {"a3-highgpu-8g:asia-northeast1"}  # its A3 core SKU is gone


def test_commitment_skus_price_reserved_machine_types(replay):
    replay.put("gcp", "skus-1.json", recording("gcp", "variant-commitments.json"))
    batch = hook(replay, regions=["us-central1"]).fetch_batch()
    assert batch.pages == 1 and not batch.dropped and not batch.skipped
    offers = by_id(batch)
    assert set(offers) == {f"{m}:us-central1{t}" for m in ("a2-highgpu-1g", "a2-highgpu-8g")
                           for t in ("", "@reserved-12mo", "@reserved-36mo")}  # fmt: skip
    one = offers["a2-highgpu-1g:us-central1@reserved-12mo"]  # 1.848362 + 12 x 0.019915 + 85 x 0.002669
    assert (one.pricing_type, one.commitment_months, str(one.price_per_hour), one.spot_price) == (
        "reserved", 12, "2.3142", None)
    three = offers["a2-highgpu-1g:us-central1@reserved-36mo"]  # 1.026868 + 12 x 0.011064 + 85 x 0.001483
    assert (three.commitment_months, str(three.price_per_hour), three.gpu_count, three.vcpus) == (36, "1.2857", 1, 12)
    eight = offers["a2-highgpu-8g:us-central1@reserved-12mo"]  # 8 x 1.848362 + 96 x 0.019915 + 680 x 0.002669
    assert str(eight.price_per_hour) == "18.5137"
    assert str(offers["a2-highgpu-8g:us-central1@reserved-36mo"].price_per_hour) == "10.2855"
    assert str(offers["a2-highgpu-1g:us-central1"].price_per_hour) == "3.6734"  # on demand, unchanged


def test_older_spot_sku_names_still_price_spot(replay):
    replay.put("gcp", "skus-1.json", recording("gcp", "variant-older-spot-names.json"))
    offers = by_id(hook(replay).fetch_batch())
    assert str(offers["a2-highgpu-1g:us-central1"].spot_price) == "1.3954"


def test_with_a_price_history_the_latest_price_counts(replay):
    replay.put("gcp", "skus-1.json", recording("gcp", "variant-price-history.json"))
    offers = by_id(hook(replay).fetch_batch())
    assert str(offers["a2-highgpu-1g:us-central1"].price_per_hour) == "3.6734"  # not the 8% higher older price
