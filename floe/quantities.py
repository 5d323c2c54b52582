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


_QUANTITY = re.compile(r"^(?P<num>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def canonical_quantity(quantity: str | int | float) -> str:
    """The form the API server stores and returns a quantity in (k8s.io/apimachinery
    ``resource.Quantity.String()``, ``CanonicalizeBytes``): ``"1000m"`` -> ``"1"``, ``"0.5"`` ->
    ``"500m"``, ``"1024Mi"`` -> ``"1Gi"``, ``"1536Mi"`` stays. A binary-suffixed value keeps the
    largest power-of-1024 suffix that leaves an integer (below 1024 it becomes decimal); every
    other value keeps the largest power-of-1000 suffix (nano up to exa) that leaves an integer.
    Exponent forms ("1e3") are not used by this stack and are rejected."""
    from fractions import Fraction

    match = _QUANTITY.match(str(quantity))
    if not match:
        raise ValueError(f"{quantity!r} is not a quantity this stack writes (e.g. '250m', '1', '512Mi')")
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        value = Fraction(match["num"]) * 1024 ** _BINARY_SUFFIXES.index(suffix)
    else:
        exponent = next(e for e, s in _DECIMAL_SUFFIXES.items() if s == suffix)
        value = Fraction(match["num"]) * Fraction(10) ** exponent
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if suffix in _BINARY_SUFFIXES[1:] and value >= 1024 and value.denominator == 1:
        number, power = int(value), 0
        while number % 1024 == 0 and power < len(_BINARY_SUFFIXES) - 1:
            number, power = number // 1024, power + 1
        return f"{sign}{number}{_BINARY_SUFFIXES[power]}"
    # Decimal: the mantissa at nano scale (rounded up, as the API server does), then drop zeros by thousands.
    scaled = value * 10**9
    number = -(-scaled.numerator // scaled.denominator)
    exponent = -9
    while number % 1000 == 0 and exponent < 18:
        number, exponent = number // 1000, exponent + 3
    return f"{sign}{number}{_DECIMAL_SUFFIXES[exponent]}"
