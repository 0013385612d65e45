import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker import gpus
from gpubroker.schema import FormFactor


@pytest.mark.parametrize(
    ("vendor_name", "model", "form"),
    [
        ("RTX 4090", "RTX4090", None),
        ("NVIDIA GeForce RTX 4090", "RTX4090", None),
        ("rtx_4090", "RTX4090", None),
        ("NVIDIA_A100", "A100", None),
        ("nvidia_h100", "H100", None),
        ("H100 SXM5", "H100", FormFactor.SXM),
        ("H100 PCIe", "H100", FormFactor.PCIE),
        ("H100 NVL", "H100", FormFactor.NVL),
        ("NVIDIA H100 80GB HBM3", "H100", None),
        ("A100-SXM4-80GB", "A100", FormFactor.SXM),
        ("Tesla T4", "T4", None),
        ("AMD Instinct MI300X", "MI300X", None),
        ("RTX A6000", "RTXA6000", None),
        ("RTX 6000 Ada", "RTX6000ADA", None),
    ],
)
def test_vendor_spellings_resolve_to_canonical_models(vendor_name, model, form):
    match = gpus.resolve(vendor_name)
    assert (match.model.name, match.form_factor) == (model, form)


@pytest.mark.parametrize("name", ["GTX 1660 SUPER", "Voodoo 5", "", "H"])
def test_unknown_names_are_reported_not_guessed(name):
    with pytest.raises(gpus.UnknownGpu):
        gpus.resolve(name)


def test_registry_names_are_unique_and_canonical():
    names = [m.name for m in gpus.MODELS]
    assert len(names) == len(set(names))
    for model in gpus.MODELS:
        assert gpus.resolve(model.name).model is model


@given(
    model=st.sampled_from(gpus.MODELS),
    separator=st.sampled_from([" ", "_", "-"]),
    prefix=st.sampled_from(["", "NVIDIA ", "nvidia_", "AMD ", "Intel "]),
    case=st.sampled_from([str.upper, str.lower, str.title]),
)
def test_resolution_ignores_case_separators_and_vendor_prefixes(model, separator, prefix, case):
    # "RTX4090" -> "RTX 4090" / "rtx_4090": split letters from digits, as vendors do
    spaced = "".join(
        c if i == 0 or c.isdigit() == model.name[i - 1].isdigit() else separator + c for i, c in enumerate(model.name)
    )
    assert gpus.resolve(case(prefix + spaced)).model is model


@given(model=st.sampled_from(gpus.MODELS), slack=st.floats(-0.05, 0.05))
def test_memory_check_accepts_each_variant_within_rounding(model, slack):
    for gb in model.memory_gb:
        assert model.memory_matches(gb * (1 + slack))
    assert not model.memory_matches(max(model.memory_gb) * 1.5)


@pytest.mark.parametrize(
    ("vendor_name", "memory"),
    [("L40S", 48), ("RTX 4090", 24), ("H100 NVL", 94), ("H100 PCIe", 80), ("H100 SXM", None), ("A100", None)],
)
def test_registry_vouches_for_memory_only_where_model_or_form_fixes_it(vendor_name, memory):
    match = gpus.resolve(vendor_name)
    assert match.model.memory_for(match.form_factor) == memory
