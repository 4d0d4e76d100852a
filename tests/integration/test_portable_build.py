"""The installed llama-cpp-python is the portable build: no AMX kernels, no instructions beyond the baseline.

A default build (GGML_NATIVE) tunes for the CPU it is built on; on Intel CPUs with AMX it also compiles AMX
kernels, which crashed the server on the first prompt of several tokens. The Makefile and the README's
"Installing without make" build it portably instead; these tests fail when an installed build is not that.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import llama_cpp
import pytest

LIB = Path(llama_cpp.__file__).parent / "lib"
# ggml's feature probe is compiled in every build (it answers 0 without AMX); anything else named amx is code.
AMX_PROBE = "ggml_cpu_has_amx_int8"
# What the portable x86-64 flags enable (any x86-64 CPU since 2013 has them): -DGGML_AVX/AVX2/FMA/F16C, and
# what those imply in ggml's CMake (SSE3, SSSE3, SSE4.2, BMI2).
X86_PORTABLE = {"SSE3", "SSSE3", "SSE4_2", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
X86_ISA = re.compile(r"^(SSE|SSSE|AVX|AMX|F16C|FMA|BMI)")


def cpu_libraries() -> list[Path]:
    found = sorted(p for p in LIB.glob("libggml-cpu*.so*") if not p.is_symlink())
    assert found, f"no libggml-cpu*.so in {LIB}"
    return found


def exported_symbols(library: Path) -> set[str]:
    nm = shutil.which("nm")
    if nm is None:  # pragma: no cover - binutils come with the compiler that built the library
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run([nm, "-D", "--defined-only", "--demangle", str(library)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split(maxsplit=2)[2] for line in out.splitlines() if len(line.split(maxsplit=2)) == 3}


def enabled_features() -> set[str]:
    """The CPU features the library was compiled with, from llama.cpp's own report (``AVX2 = 1 | ...``)."""
    info = llama_cpp.llama_print_system_info().decode()
    return {name for name, value in re.findall(r"(\w+) = (\d+)", info) if value != "0"}


@pytest.mark.parametrize("library", cpu_libraries(), ids=lambda p: p.name)
def test_the_cpu_backend_holds_no_amx_kernels(library: Path) -> None:
    symbols = exported_symbols(library)
    assert AMX_PROBE in symbols  # the table was read: the probe every build has is there
    amx = sorted(s for s in symbols if "amx" in s.lower() and s != AMX_PROBE)
    assert amx == [], (f"{library.name} was built with AMX kernels ({amx[:3]}...); reinstall llama-cpp-python "
                       "with the portable flags (README: Installing without make)")


def test_the_build_enables_no_cpu_feature_beyond_the_portable_baseline() -> None:
    features = enabled_features()
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the ISA baseline is checked on x86-64; this is {platform.machine()}")
    isa = {f for f in features if X86_ISA.match(f)}
    assert "AVX2" in isa, f"the portable flags were not applied: {sorted(isa)}"
    assert isa <= X86_PORTABLE, (f"built for a newer CPU than the portable baseline (-march=native?): "
                                 f"{sorted(isa - X86_PORTABLE)}")
