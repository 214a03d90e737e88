"""The step's hardware choices: bf16 autocast only where the CPU has bf16 arithmetic."""

from __future__ import annotations

import pytest

from core.device import bf16_in_cpuinfo

XEON = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\nbugs\t\t: spectre\n"
EPYC = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE = "flags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8\n"


@pytest.mark.parametrize("text, expected", [(XEON, False), (EPYC, True), (SAPPHIRE, True),
                                            ("", False), ("model name\t: Apple M2\n", False)])
def test_bf16_autocast_only_with_bf16_instructions(text: str, expected: bool) -> None:
    assert bf16_in_cpuinfo(text) is expected


def test_bf16_flag_must_be_a_whole_word() -> None:
    assert not bf16_in_cpuinfo("flags\t: avx512_bf16x fake_amx_bf16\n")
