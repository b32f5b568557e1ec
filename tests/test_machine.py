"""zoo.machine: the CPU's description and the float32 peak that the benchmarks divide by."""

from __future__ import annotations

import os

import pytest

from zoo.machine import CPU, cpu


@pytest.mark.parametrize("flags, lanes, gflops", [
    # worked by hand: cores x GHz x 2 FMA units x lanes x 2 FLOP an FMA
    ({"avx2", "fma"}, 8, 2 * 2.445412 * 2 * 8 * 2),  # 156.5: the AMD EPYC of 2026-12-03
    ({"avx2", "fma", "avx512f", "avx512_bf16"}, 16, 2 * 2.445412 * 2 * 16 * 2),
    ({"sse4_2"}, 4, 2 * 2.445412 * 1 * 4 * 2),  # no FMA: one multiply and one add port
])
def test_the_peak_is_cores_clock_fma_units_lanes_and_two(flags, lanes, gflops):
    machine = CPU("AMD EPYC", frozenset(flags), 2, 2445.412)
    assert machine.float32_lanes == lanes
    assert machine.peak_gflops() == pytest.approx(gflops)
    assert machine.peak_formula().endswith(f"x {lanes} float32 lanes x 2 = {gflops:.0f} GFLOP/s")


def test_smt_siblings_share_their_cores_fma_units():
    machine = CPU("Xeon", frozenset({"avx2", "fma"}), 4, 2000.0, physical_cores=2)
    assert machine.peak_gflops() == pytest.approx(2 * 2.0 * 2 * 8 * 2)  # 4 logical CPUs, 2 cores


def test_no_clock_no_peak_and_the_key_names_what_a_choice_depends_on():
    machine = CPU("Some CPU", frozenset({"avx2", "fma", "sse2"}), 4, None)
    assert machine.peak_gflops() is None and machine.peak_formula().startswith("unknown")
    assert machine.key("tensorflow 2.21.0") == "Some CPU | 4 cores | avx2 fma | tensorflow 2.21.0"
    assert machine.describe() == "Some CPU; flags avx2 fma; 4 cores"


def test_this_machine_is_read_from_the_system():
    here = cpu()
    assert here.model and here.cores == len(os.sched_getaffinity(0)) and 1 <= here.physical_cores <= here.cores
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            assert here.model in f.read()
        # the oracle for the flags: NumPy's own detection of the same CPU, through cpuid
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as numpy_sees
        except ImportError:  # NumPy 1.x
            from numpy.core._multiarray_umath import __cpu_features__ as numpy_sees
        for flag, name in (("avx2", "AVX2"), ("fma", "FMA3"), ("avx512f", "AVX512F")):
            assert (flag in here.vector_flags) == numpy_sees[name], flag
