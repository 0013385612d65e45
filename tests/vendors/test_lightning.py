"""Lightning AI: the public accelerator catalogue of each cloud, whole-machine prices, spot only below on-demand."""

from decimal import Decimal

import pytest

from gpubroker_provider.hooks.base import PayloadError
from gpubroker_provider.hooks.lightning import CLOUDS, LightningHook
from tests.vendors import by_id, lost, with_one_item_broken


def hook(replay) -> LightningHook:
    return LightningHook(base_url=replay.vendor_url("lightning"))  # public catalogue: no key


def test_every_cloud_catalogue_is_read_and_gpu_machines_become_offers(replay):
    batch = hook(replay).fetch_batch()
    offers = by_id(batch)
    assert batch.pages == len(CLOUDS) == 6 and batch.items == 21 and len(offers) == 17
    assert batch.skipped == {"CPU machine": 2, "TPU machine": 1,
                             "GCP Dynamic Workload Scheduler only: no on-demand price": 1}  # fmt: skip
    assert not batch.dropped and not batch.unknown_gpus and not batch.memory_mismatches

    own = offers["MACHINE/lit-h100-80gb-8"]
    assert (own.gpu_model, own.gpu_count, own.gpu_memory_gb, own.cloud) == ("H100", 8, 80.0, None)
    assert (own.price_per_hour, own.spot_price) == (Decimal("36.0000"), Decimal("30.5600"))  # the whole machine
    assert (own.vcpus, own.ram_gb, own.disk_gb) == (208, 2061.6, 8000.0)  # 1 966 080 MiB -> GB
    assert (own.region, own.country, own.availability) == ("lightning-baremetal", None, "available")

    aws = offers["AWS/p5.48xlarge"]
    assert (aws.instance_type, aws.cloud, aws.region) == ("p5.48xlarge", "aws", "lightning-public-prod")
    assert (str(aws.price_per_hour), str(aws.spot_price), aws.pricing_type) == ("64.9600", "34.1000", "on_demand")
    a100 = offers["AWS/p4d.24xlarge"]
    assert (a100.gpu_model, a100.gpu_memory_gb, str(a100.price_per_hour)) == ("A100", 40.0, "27.6700")
    assert offers["GCP/a2-ultragpu-1g"].gpu_memory_gb == 80.0  # A100 size read from "nvidia-a100-80gb"


def test_spot_is_kept_only_where_it_is_an_interruptible_discount(replay):
    offers = by_id(hook(replay).fetch_batch())
    assert offers["AWS/g4dn.2xlarge"].spot_price == Decimal("0.4200")
    assert offers["AWS/g6e.4xlarge"].spot_price is None  # spot 3.02 above on-demand 2.89
    assert offers["GCP/g2-standard-8"].spot_price is None  # spot 0.71 above on-demand 0.48
    assert offers["LAMBDA_LABS/gpu_8x_h100_sxm5"].spot_price is None  # spotPrice 0: no spot on Lambda
    assert str(offers["LAMBDA_LABS/gpu_8x_h100_sxm5"].price_per_hour) == "23.9200"


def test_memory_from_the_family_where_the_gpu_type_omits_it_and_capacity_flags(replay):
    offers = by_id(hook(replay).fetch_batch())
    b200 = offers["LAMBDA_LABS/gpu_8x_b200_sxm6"]  # gpuType "nvidia-b200": family B200 -> 180 GB
    assert (b200.gpu_model, b200.gpu_memory_gb, b200.availability, b200.cloud) == ("B200", 180.0, "unavailable", "lambda")
    assert offers["AWS/g4dn.2xlarge"].gpu_memory_gb == 16.0  # "nvidia-t4": family T4
    voltage = offers["VOLTAGE_PARK/h100-sxm5-80gb-8x"]
    assert (str(voltage.price_per_hour), voltage.availability, voltage.cloud) == ("15.9200", "unavailable", "voltagepark")
    nebius = offers["NEBIUS/gpu-b200-sxm-1gpu-20vcpu-224gb"]
    assert (str(nebius.price_per_hour), nebius.gpu_memory_gb, nebius.ram_gb) == ("9.8600", 180.0, 240.5)


def test_a_host_ram_no_machine_has_is_left_empty(replay):
    h200 = by_id(hook(replay).fetch_batch())["AWS/p5e.48xlarge"]  # memoryMb 141000000, as the catalogue sends it
    assert (h200.ram_gb, h200.vcpus, str(h200.price_per_hour)) == (None, 192, "84.8000")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cost": "36.00"}, "field 'cost' is not a number"),
        ({"resources": {"cpu": 208, "gpu": 8, "memoryMb": "1966080"}}, "missing field 'gpuType'"),
        ({"clusterId": None}, "field 'clusterId' is not a name"),
        ({"cost": 0}, "price_per_hour: Input should be greater than 0"),
    ],
    ids=["cost-text", "gpu-type-gone", "cluster-gone", "free"],
)
def test_a_broken_machine_is_dropped_with_its_reason(replay, change, reason):
    whole, broken = with_one_item_broken(replay, hook, "lightning", "accelerators-machine.json",
                                         lambda body: body["accelerator"][2].update(change))  # fmt: skip
    assert broken.dropped == {reason: 1}
    assert lost(whole, broken) == {"MACHINE/lit-h100-80gb-8"}


def test_a_disabled_machine_is_skipped_and_an_unknown_gpu_counted(replay):
    def edit(body):
        body["accelerator"][1]["enabled"] = False
        body["accelerator"][3]["resources"]["gpuType"] = "nvidia-x300"

    whole, broken = with_one_item_broken(replay, hook, "lightning", "accelerators-machine.json", edit)
    assert broken.skipped["machine not enabled"] == 1 and broken.unknown_gpus == {"nvidia-x300": 1}
    assert lost(whole, broken) == {"MACHINE/lit-h100-80gb-1", "MACHINE/lit-h200-141gb-1"}


def test_a_catalogue_without_its_list_refuses_the_batch(replay):
    replay.put("lightning", "accelerators-nebius.json", {"accelerators": []})
    with pytest.raises(PayloadError, match=r'lightning: malformed payload: expected \{"accelerator": \[...\]\}'):
        hook(replay).fetch_batch()
