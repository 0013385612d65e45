"""AWS hook (EC2 + SageMaker price list files) against recorded payloads served over HTTP."""

import copy

import pytest

from gpubroker_provider.hooks.aws import DEFAULT_REGIONS, AwsHook
from gpubroker_provider.hooks.base import PayloadError
from tests.vendors import by_id, lost, with_one_item_broken
from tests.conftest import recording


def hook(replay, **kwargs) -> AwsHook:
    return AwsHook(base_url=replay.vendor_url("aws"), api_key=None, **kwargs)


def test_every_region_file_of_both_services_is_read(replay):
    batch = hook(replay).fetch_batch()
    assert batch.pages == 2 * len(DEFAULT_REGIONS)
    assert sorted(by_id(batch)) == sorted([
        "ec2:p5.48xlarge:us-east-1", "ec2:p4d.24xlarge:us-east-1", "ec2:g5.xlarge:us-east-1",
        "ec2:g4dn.xlarge:us-east-1",
        "ec2:p5.48xlarge:us-west-2", "ec2:g6.12xlarge:us-west-2", "ec2:g5g.xlarge:us-west-2",
        "ec2:p4d.24xlarge:eu-central-1", "ec2:g5.12xlarge:eu-central-1",
        "sagemaker:ml.p4d.24xlarge:us-east-1", "sagemaker:ml.g5.xlarge:us-east-1",
        "sagemaker:ml.p5.48xlarge:us-west-2", "sagemaker:ml.g4dn.xlarge:eu-central-1",
    ])
    # g3 (Tesla M60) is a GPU family nobody can name: counted, not guessed, and never an offer
    assert batch.unknown_gpus == {"AWS g3 family": 1}
    assert "ec2:g3.4xlarge:us-east-1" not in by_id(batch)


def test_ec2_mapping_whole_instance_price_and_specs(replay):
    offers = by_id(hook(replay).fetch_batch())
    p5 = offers["ec2:p5.48xlarge:us-east-1"]
    assert (p5.gpu_model, p5.gpu_count, p5.gpu_memory_gb) == ("H100", 8, 80)
    assert str(p5.price_per_hour) == "55.0400"  # Linux, not the Windows row at 63.872
    assert (p5.vcpus, p5.ram_gb, p5.disk_gb) == (192, 2048, 8 * 3840)
    assert (p5.region, p5.country, p5.continent) == ("us-east-1", "US", "NA")
    assert p5.instance_type == "p5.48xlarge" and p5.spot_price is None and p5.availability == "unknown"

    g5 = offers["ec2:g5.xlarge:us-east-1"]
    assert (g5.gpu_model, g5.gpu_count, g5.gpu_memory_gb) == ("A10G", 1, 24)
    assert str(g5.price_per_hour) == "1.0060"  # shared tenancy, not the Dedicated 1.106 row
    assert str(offers["ec2:g4dn.xlarge:us-east-1"].price_per_hour) == "0.5260"  # not "SQL Web" 0.646
    assert offers["ec2:p4d.24xlarge:us-east-1"].gpu_memory_gb == 40

    fra = offers["ec2:p4d.24xlarge:eu-central-1"]
    assert (fra.country, fra.continent, str(fra.price_per_hour)) == ("DE", "EU", "26.3570")
    l4 = offers["ec2:g6.12xlarge:us-west-2"]
    assert (l4.gpu_model, l4.gpu_count, l4.disk_gb, l4.cpu_arch) == ("L4", 4, 3760, "x86_64")
    assert offers["ec2:g5.12xlarge:eu-central-1"].disk_gb == 3800

    g5g = offers["ec2:g5g.xlarge:us-west-2"]  # Graviton2 with NVIDIA T4G
    assert (g5g.gpu_model, g5g.gpu_count, g5g.gpu_memory_gb, str(g5g.price_per_hour)) == ("T4G", 1, 16, "0.4200")
    assert (g5g.vcpus, g5g.ram_gb, g5g.disk_gb, g5g.cpu_arch) == (4, 8, None, "arm64")
    assert (g5g.region, g5g.country, g5g.continent) == ("us-west-2", "US", "NA")


def test_sagemaker_is_its_own_product_line(replay):
    offers = by_id(hook(replay).fetch_batch())
    ml = offers["sagemaker:ml.p4d.24xlarge:us-east-1"]
    assert ml.instance_type == "ml.p4d.24xlarge"
    assert str(ml.price_per_hour) == "25.2527"  # Training hour, not the 13.57 upfront fee
    assert (ml.gpu_model, ml.gpu_count, ml.gpu_memory_gb, ml.vcpus) == ("A100", 8, 40, 96)
    assert offers["ec2:p4d.24xlarge:us-east-1"].price_per_hour != ml.price_per_hour
    assert str(offers["sagemaker:ml.g5.xlarge:us-east-1"].price_per_hour) == "1.4080"
    assert offers["sagemaker:ml.g4dn.xlarge:eu-central-1"].country == "DE"
    assert not [o for o in offers if "m5" in o or "c7i" in o]  # non-GPU instances skipped


def test_regions_are_configurable(replay):
    batch = hook(replay, regions=["us-west-2"]).fetch_batch()
    assert batch.pages == 2
    assert {o.region for o in batch.offers} == {"us-west-2"}


def test_zero_price_is_skipped_never_landed(replay):
    body = copy.deepcopy(recording("aws", "ec2-us-west-2.json"))
    sku = next(s for s, p in body["products"].items() if p["attributes"]["instanceType"] == "g6.12xlarge")
    for term in body["terms"]["OnDemand"][sku].values():
        for dim in term["priceDimensions"].values():
            dim["pricePerUnit"]["USD"] = "0.0000000000"
    replay.put("aws", "ec2-us-west-2.json", body)
    assert "ec2:g6.12xlarge:us-west-2" not in by_id(hook(replay).fetch_batch())


def _mutate_p5(body, change):
    sku = next(s for s, p in body["products"].items()
               if p["attributes"]["instanceType"] == "p5.48xlarge" and p["attributes"]["operatingSystem"] == "Linux")
    change(body, sku)


def test_an_offer_file_without_on_demand_terms_rejects_the_whole_batch(replay):
    body = copy.deepcopy(recording("aws", "ec2-us-east-1.json"))
    body["terms"].pop("OnDemand")
    replay.put("aws", "ec2-us-east-1.json", body)
    with pytest.raises(PayloadError, match="aws: malformed payload: expected an offer file"):
        hook(replay).fetch_batch()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body, sku: body["products"][sku]["attributes"].update(gpu="NA"), "GPU instance family without a GPU count"),
        (lambda body, sku: next(iter(next(iter(body["terms"]["OnDemand"][sku].values()))["priceDimensions"].values()))
         ["pricePerUnit"].update(USD="fifty"), "could not convert string to float: 'fifty'"),
        (lambda body, sku: body["products"][sku]["attributes"].update(regionCode="", location="Moon Base"),
         "unknown location 'Moon Base'"),
    ],
    ids=["gpu-family-without-gpu-count", "non-numeric-price", "unknown-region"],
)
def test_a_broken_product_is_dropped_with_its_reason_and_the_rest_land(replay, change, reason):
    whole, broken = with_one_item_broken(replay, hook, "aws", "ec2-us-east-1.json", lambda body: _mutate_p5(body, change))
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"ec2:p5.48xlarge:us-east-1"}


def test_other_products_are_skipped_by_reason_not_dropped(replay):
    batch = hook(replay).fetch_batch()
    assert not batch.dropped
    assert batch.skipped["CPU-only instance type"] >= 3  # m5 / c7i instances
    assert batch.skipped["not a Linux shared on-demand instance (another family, OS, tenancy or capacity row)"] >= 4


def test_an_older_offer_file_takes_the_region_from_the_location_name(replay):
    replay.put("aws", "ec2-us-east-1.json", recording("aws", "variant-older-layout.json"))
    offers = by_id(hook(replay).fetch_batch())
    p3dn = offers["ec2:p3dn.24xlarge:us-east-1"]
    assert (p3dn.gpu_model, p3dn.gpu_count, p3dn.gpu_memory_gb, str(p3dn.price_per_hour)) == ("V100", 8, 32, "31.2120")
    assert (p3dn.region, p3dn.country, p3dn.disk_gb) == ("us-east-1", "US", 1800)
    assert str(offers["ec2:p3.2xlarge:us-east-1"].price_per_hour) == "3.0600"  # not Windows, not Dedicated


def test_a_get_products_answer_is_read_entry_by_entry(replay):
    replay.put("aws", "ec2-us-east-1.json", recording("aws", "variant-get-products.json"))
    offers = by_id(hook(replay).fetch_batch())
    g6e = offers["ec2:g6e.12xlarge:us-east-1"]
    assert (g6e.gpu_model, g6e.gpu_count, g6e.gpu_memory_gb, str(g6e.price_per_hour)) == ("L40S", 4, 48, "10.4926")
    assert offers["ec2:g5g.2xlarge:us-east-1"].cpu_arch == "arm64"


def test_a_get_products_entry_that_is_not_json_is_dropped_alone(replay):
    body = recording("aws", "variant-get-products.json")
    body["PriceList"][1] = body["PriceList"][1][:-10]  # truncated JSON text
    replay.put("aws", "ec2-us-east-1.json", body)
    batch = hook(replay).fetch_batch()
    [(reason, count)] = batch.dropped.items()
    assert reason.startswith("JSONDecodeError: ") and count == 1
    assert "ec2:g6e.12xlarge:us-east-1" not in by_id(batch) and "ec2:p5.48xlarge:us-east-1" in by_id(batch)


def test_standard_no_upfront_reservations_become_reserved_offers(replay):
    replay.put("aws", "ec2-us-east-1.json", recording("aws", "variant-reserved-terms.json"))
    batch = hook(replay, regions=["us-east-1"]).fetch_batch()
    offers = {o.offer_id: o for o in batch.offers}
    reserved = {k: o for k, o in offers.items() if "@reserved-" in k}
    assert set(reserved) == {"ec2:p5.48xlarge:us-east-1@reserved-12mo", "ec2:p5.48xlarge:us-east-1@reserved-36mo",
                             "ec2:g5.xlarge:us-east-1@reserved-12mo"}  # upfront and convertible options not read
    p5 = reserved["ec2:p5.48xlarge:us-east-1@reserved-12mo"]
    assert (p5.pricing_type, p5.commitment_months, str(p5.price_per_hour)) == ("reserved", 12, "37.4272")
    assert (p5.gpu_model, p5.gpu_count, p5.gpu_memory_gb, p5.region, p5.country) == ("H100", 8, 80, "us-east-1", "US")
    assert str(reserved["ec2:p5.48xlarge:us-east-1@reserved-36mo"].price_per_hour) == "25.2906"
    assert str(reserved["ec2:g5.xlarge:us-east-1@reserved-12mo"].price_per_hour) == "0.6340"
    on_demand = offers["ec2:p5.48xlarge:us-east-1"]
    assert (on_demand.pricing_type, str(on_demand.price_per_hour), on_demand.commitment_months) == ("on_demand", "55.0400", None)
