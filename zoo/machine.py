"""The CPU this process runs on: model, vector flags, cores, clock, and the float32 peak they imply.

The project's machines change CPU between sessions (AMD EPYC with or without AVX-512, Xeons with
AMX), and what trains fastest changes with them (benchmarks/RESULTS.md), so the speed probe keys
its cache on this, and every benchmark prints it first. Read from /proc/cpuinfo where there is one
(Linux); elsewhere from `platform`, with no flags and no clock.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # the ones that pick TF's kernels

# FMA units per core. Every x86 core with AVX2+FMA since Haswell/Zen 2 issues two FMAs a cycle, and
# so do the Xeons with AVX-512 that these machines get (Sapphire Rapids, Ice Lake SP Gold/Platinum);
# a part with one AVX-512 unit (Xeon Silver/Bronze) has half this peak, and a Zen 4 EPYC runs
# AVX-512 as two 256-bit halves (half too). Stated, not read: no flag tells. Without FMA, one
# multiply and one add port a cycle make the same 2 FLOP a lane as one FMA unit.
FMA_UNITS = 2


@dataclass(frozen=True)
class CPU:
    model: str
    flags: frozenset
    cores: int  # the logical CPUs this process may run on
    mhz: float | None  # the clock /proc/cpuinfo reports (a VM reports its nominal clock)
    physical_cores: int = 0  # of those, the cores with FMA units of their own (SMT siblings share them)

    def __post_init__(self):
        if not self.physical_cores:
            object.__setattr__(self, "physical_cores", self.cores)

    @property
    def vector_flags(self) -> list[str]:
        return [flag for flag in FLAGS if flag in self.flags]

    @property
    def float32_lanes(self) -> int:
        """float32 values in one FMA: 16 with AVX-512, 8 with AVX2+FMA, 4 with SSE (no FMA: counted as 1
        multiply + 1 add, the same flops)."""
        if "avx512f" in self.flags:
            return 16
        if "avx2" in self.flags or "avx" in self.flags:
            return 8
        return 4

    @property
    def fma_units(self) -> int:
        return FMA_UNITS if "fma" in self.flags else 1

    def peak_gflops(self) -> float | None:
        """float32 peak: physical cores x clock x FMA units x lanes x 2 (a multiply and an add per
        FMA). An upper bound: the clock is the nominal one, and see FMA_UNITS."""
        if not self.mhz:
            return None
        return self.physical_cores * self.mhz / 1000 * self.fma_units * self.float32_lanes * 2

    def peak_formula(self) -> str:
        if not self.mhz:
            return "unknown: the clock is not readable here"
        return (f"{self.physical_cores} cores x {self.mhz / 1000:.2f} GHz x {self.fma_units} FMA units x "
                f"{self.float32_lanes} float32 lanes x 2 = {self.peak_gflops():.0f} GFLOP/s")

    def key(self, *more: str) -> str:
        """What a cached choice depends on: this CPU and what else the caller names (TF's version)."""
        return " | ".join([self.model, f"{self.cores} cores", " ".join(self.vector_flags) or "no avx2", *more])

    def describe(self) -> str:
        flags = " ".join(self.vector_flags) or "none of " + "/".join(FLAGS)
        return f"{self.model}; flags {flags}; {self.cores} cores"


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu() -> CPU:
    model, flags, mhz = platform.processor() or platform.machine(), set(), None
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key == "cpu MHz" and mhz is None:
                    with contextlib.suppress(ValueError):
                        mhz = float(value)
                elif key == "flags":
                    flags = set(value.split())
                    break
    return CPU(model, frozenset(flags), cpu_cores(), mhz, _physical_cores())


def _physical_cores() -> int:
    """The cores behind the CPUs this process may use: SMT siblings (Linux's thread_siblings_list)
    count once. Without that file, every CPU counts."""
    with contextlib.suppress(AttributeError):
        siblings = set()
        for n in os.sched_getaffinity(0):
            try:
                with open(f"/sys/devices/system/cpu/cpu{n}/topology/thread_siblings_list") as f:
                    siblings.add(f.read().strip())
            except OSError:
                siblings.add(str(n))
        return len(siblings) or cpu_cores()
    return cpu_cores()
