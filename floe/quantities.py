"""Kubernetes resource quantities (the subset a person writes for CPU and memory)."""

from __future__ import annotations

import re

_CPU = re.compile(r"^(?P<num>\d+(\.\d+)?)(?P<unit>m?)$")
_MEMORY = re.compile(r"^(?P<num>\d+(\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_FACTORS = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def cpu_millicores(quantity: str | int | float) -> int:
    """``"250m"`` -> 250, ``"1"`` -> 1000, ``"0.5"`` -> 500."""
    match = _CPU.match(str(quantity))
    if not match:
        raise ValueError(f"{quantity!r} is not a CPU quantity (use millicores like '250m' or cores like '1' / '0.5')")
    value = float(match["num"])
    return round(value if match["unit"] == "m" else value * 1000)


def memory_bytes(quantity: str | int) -> int:
    """``"256Mi"`` -> 268435456; accepts Ki/Mi/Gi/Ti and k/M/G/T suffixes or plain bytes."""
    match = _MEMORY.match(str(quantity))
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity (use e.g. '256Mi', '1Gi', '512M')")
    return round(float(match["num"]) * _MEMORY_FACTORS[match["unit"]])


def format_cpu(millicores: int) -> str:
    return f"{millicores / 1000:g} CPU" if millicores % 1000 == 0 else f"{millicores}m"


def format_memory(n_bytes: int) -> str:
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.2f}".rstrip("0").rstrip(".") + unit
    return f"{n_bytes}B"
