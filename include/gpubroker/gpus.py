"""GPU registry: canonical models, the names vendors use for them, and their memory variants.

`resolve("NVIDIA GeForce RTX 4090")` -> GpuMatch(model=RTX4090, form_factor=None).
A name the registry does not know raises `UnknownGpu`; callers count and report it, never guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from gpubroker.schema import FormFactor


class UnknownGpu(LookupError):
    """A vendor GPU name that the registry does not know."""


@dataclass(frozen=True)
class GpuModel:
    name: str  # canonical, e.g. "H100"
    vendor: str  # "NVIDIA", "AMD", "Intel"
    memory_gb: tuple[float, ...]  # every per-GPU memory variant sold
    aliases: tuple[str, ...] = ()
    memory_by_form: tuple[tuple[FormFactor, float], ...] = ()  # where the form factor fixes the memory

    def memory_for(self, form: FormFactor | None) -> float | None:
        """Per-GPU memory the registry can vouch for without the vendor saying: the model's one
        size, or the size its form factor fixes (H100 NVL: 94 GB); None when it cannot tell."""
        if len(self.memory_gb) == 1:
            return self.memory_gb[0]
        return dict(self.memory_by_form).get(form) if form else None

    @property
    def price_band(self) -> tuple[float, float]:
        """Plausible on-demand USD per GPU-hour, by memory class: outside it, a price is suspect."""
        top = max(self.memory_gb)
        return (0.25, 25.0) if top >= 80 else (0.08, 12.0) if top >= 40 else (0.02, 6.0)

    def memory_matches(self, gb: float, tolerance: float = 0.1) -> bool:
        """Vendors report 80 GB as 79.6 GiB or 81 920 MiB: accept within 10%."""
        for m in self.memory_gb:  # a loop, not any(<generator>): once per offer of every batch
            if abs(gb - m) <= m * tolerance:
                return True
        return False


_NV, _AMD, _INTEL = "NVIDIA", "AMD", "Intel"

MODELS: tuple[GpuModel, ...] = (
    # NVIDIA data centre
    GpuModel("B300", _NV, (262, 288)),
    GpuModel("GB300", _NV, (279, 288)),
    GpuModel("B200", _NV, (180, 192)),
    GpuModel("GB200", _NV, (186, 192)),
    GpuModel("H200", _NV, (141,), ("h200nvl",)),
    GpuModel("GH200", _NV, (96, 144)),
    GpuModel("H100", _NV, (80, 94), ("h100nvl", "h10080gb", "h100mega"),
             ((FormFactor.PCIE, 80), (FormFactor.NVL, 94))),  # SXM boards come in 80 and 94 GB
    GpuModel("H800", _NV, (80,)),
    GpuModel("A100", _NV, (40, 80), ("a10040gb", "a10080gb", "a100x")),
    GpuModel("A800", _NV, (40, 80)),
    GpuModel("L40S", _NV, (48,)),
    GpuModel("L40", _NV, (48,)),
    GpuModel("L4", _NV, (24,)),
    GpuModel("A40", _NV, (48,)),
    GpuModel("A30", _NV, (24,)),
    GpuModel("A16", _NV, (16,)),
    GpuModel("A10G", _NV, (24,)),
    GpuModel("A10", _NV, (24,)),
    GpuModel("A2", _NV, (16,)),
    GpuModel("V100", _NV, (16, 32), ("teslav100", "v100sxm2", "v100s")),
    GpuModel("T4", _NV, (16,), ("teslat4",)),
    GpuModel("T4G", _NV, (16,)),
    GpuModel("P100", _NV, (12, 16), ("teslap100",)),
    GpuModel("P40", _NV, (24,), ("teslap40",)),
    GpuModel("P4", _NV, (8,), ("teslap4",)),
    GpuModel("K80", _NV, (12,), ("teslak80",)),
    # NVIDIA workstation
    GpuModel("RTXPRO6000", _NV, (96,), ("rtxpro6000blackwell", "rtxpro6000b", "rtxpro6000server", "rtxpro6000s",
                                        "rtxpro6000se", "rtxpro6000blackwellserveredition", "rtxpro6000ws",
                                        "rtxpro6000workstation", "rtxpro6000blackwellworkstationedition")),
    GpuModel("RTX5880ADA", _NV, (48,), ("rtx5880adageneration",)),
    GpuModel("RTX6000ADA", _NV, (48,), ("rtx6000ada", "rtx6000adageneration", "rtxa6000ada")),
    GpuModel("RTX5000ADA", _NV, (32,), ("rtx5000adageneration",)),
    GpuModel("RTX4000ADA", _NV, (20,), ("rtx4000adageneration", "rtx4000sffada")),
    GpuModel("RTX2000ADA", _NV, (16,), ("rtx2000adageneration",)),
    GpuModel("RTXA6000", _NV, (48,), ("a6000", "rtxa6000")),
    GpuModel("RTXA5000", _NV, (24,), ("a5000",)),
    GpuModel("RTXA4500", _NV, (20,), ("a4500",)),
    GpuModel("RTXA4000", _NV, (16,), ("a4000",)),
    GpuModel("RTXA2000", _NV, (6, 12), ("a2000",)),
    GpuModel("QUADRORTX6000", _NV, (24,), ("rtx6000", "quadrortx6000", "qrtx6000")),
    GpuModel("QUADRORTX8000", _NV, (48,), ("rtx8000", "qrtx8000")),
    GpuModel("QUADRORTX5000", _NV, (16,), ("qrtx5000",)),
    GpuModel("QUADRORTX4000", _NV, (8,), ("qrtx4000",)),
    # NVIDIA consumer
    GpuModel("RTX5090", _NV, (32,)),
    GpuModel("RTX5080", _NV, (16,)),
    GpuModel("RTX4090", _NV, (24,)),
    GpuModel("RTX4090D", _NV, (24,)),
    GpuModel("RTX4080", _NV, (16,), ("rtx4080super", "rtx4080s")),
    GpuModel("RTX4070TI", _NV, (12, 16), ("rtx4070tisuper", "rtx4070sti", "rtx4070tis")),
    GpuModel("RTX4070", _NV, (12,), ("rtx4070super", "rtx4070s")),
    GpuModel("RTX4060TI", _NV, (8, 16)),
    GpuModel("RTX4060", _NV, (8,)),
    GpuModel("RTX5070TI", _NV, (16,)),
    GpuModel("RTX5070", _NV, (12,)),
    GpuModel("RTX3090", _NV, (24,), ("rtx3090ti",)),
    GpuModel("RTX3080", _NV, (10, 12), ("rtx3080ti",)),
    GpuModel("RTX3070", _NV, (8,)),
    GpuModel("RTX3060TI", _NV, (8,)),
    GpuModel("RTX3060", _NV, (12,)),
    GpuModel("RTX5060TI", _NV, (16,)),
    GpuModel("RTX2080TI", _NV, (11,)),
    GpuModel("GTX1080TI", _NV, (11,)),
    GpuModel("TITANV", _NV, (12,)),
    # AMD
    GpuModel("MI355X", _AMD, (288,)),
    GpuModel("MI350X", _AMD, (288,)),
    GpuModel("MI325X", _AMD, (256,)),
    GpuModel("MI300X", _AMD, (192,)),
    GpuModel("MI250X", _AMD, (128,)),
    GpuModel("MI250", _AMD, (128,)),
    GpuModel("MI210", _AMD, (64,)),
    GpuModel("MI25", _AMD, (16,)),
    GpuModel("RX7900XTX", _AMD, (24,), ("7900xtx",)),
    # Intel
    GpuModel("GAUDI2", _INTEL, (96,), ("hl225", "gaudi")),
    GpuModel("GAUDI3", _INTEL, (128,)),
    GpuModel("MAX1550", _INTEL, (128,), ("datacentergpumax1550",)),
)

# Tokens vendors wrap names in, dropped before lookup: "NVIDIA GeForce RTX 4090 24GB" -> "rtx4090".
_NOISE = re.compile(
    r"nvidia|geforce|tesla|amd|instinct|radeon|intel|gpu|\d+gb?|hbm\d*e?|gddr\d*x?|tensor|core|oam|nvl\d+"
)
# HGX boards and "NVLink" parts are SXM modules; "NVL" alone is the H100/H200 NVL PCIe card pair.
_FORM = re.compile(r"(sxm\d?|pcie(?:gen\d)?|nvl|hgx|nvlink)")
_FORM_FACTORS = {"sxm": FormFactor.SXM, "pcie": FormFactor.PCIE, "nvl": FormFactor.NVL,
                 "hgx": FormFactor.SXM, "nvlink": FormFactor.SXM}  # fmt: skip


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY: dict[str, GpuModel] = {}
for _m in MODELS:
    for _alias in (_m.name, *_m.aliases):
        _BY_KEY[_key(_alias)] = _m
BY_NAME: dict[str, GpuModel] = {m.name: m for m in MODELS}


@dataclass(frozen=True)
class GpuMatch:
    model: GpuModel
    form_factor: FormFactor | None


@lru_cache(maxsize=4096)  # a sync sees a few dozen spellings, each thousands of times
def resolve(vendor_name: str) -> GpuMatch:
    """Canonical model and form factor for any vendor spelling; `UnknownGpu` if not in the registry."""
    tokens = re.split(r"[^a-z0-9]+", vendor_name.lower())
    form = None
    kept = []
    for token in filter(None, tokens):
        if m := _FORM.fullmatch(token):
            form = _FORM_FACTORS[re.sub(r"\d|gen", "", m.group(1))]
        elif not _NOISE.fullmatch(token):
            kept.append(token)
    model = _BY_KEY.get("".join(kept))
    if model is None:
        raise UnknownGpu(f"unknown GPU name {vendor_name!r}")
    return GpuMatch(model, form)
