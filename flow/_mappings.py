"""Headroom under the Linux limit on memory mappings, checked before compiling.

XLA:CPU loads each fused kernel of a compiled program as its own object file,
with separate mappings for code, constants and data. On the default moons
model (6 blocks, 10 components, float32, jaxlib 0.10.2) one program added
250-390 mappings for forward and inverse and about 620 for the pullback
(``benchmarks/bench_programs.py``). The mappings are released when the
program is garbage-collected.

Linux caps the mappings of a process at ``vm.max_map_count``, 65,530 by
default. When a new object file does not fit, LLVM aborts the whole process
while loading it. ``check_mapping_headroom`` turns that abort into an
exception raised before the compilation starts.
"""

from __future__ import annotations

from pathlib import Path

MAPS_FILE = Path("/proc/self/maps")
LIMIT_FILE = Path("/proc/sys/vm/max_map_count")

# Mappings kept free for the program about to compile and for the rest of the
# process (malloc arenas, thread stacks, numpy buffers). The largest program
# measured, a pullback, added 626.
RESERVED_MAPPINGS = 2000


class MappingLimitError(RuntimeError):
    """Compiling another XLA program could exceed the process's mapping limit."""


def mapping_usage() -> tuple[int, int] | None:
    """Return ``(mappings in use, vm.max_map_count)``, or None off Linux."""
    try:
        limit = int(LIMIT_FILE.read_text().strip())
        with MAPS_FILE.open("rb") as maps:
            used = sum(1 for _ in maps)
    except (OSError, ValueError):
        return None
    return used, limit


def check_mapping_headroom(program: str) -> None:
    """Raise MappingLimitError when fewer than RESERVED_MAPPINGS are left.

    Args:
        program: what is about to compile, for the message.
    """
    usage = mapping_usage()
    if usage is None:
        return
    used, limit = usage
    if limit - used >= RESERVED_MAPPINGS:
        return
    raise MappingLimitError(
        f"cannot compile {program}: this process uses {used:,} of its {limit:,} "
        f"memory mappings (vm.max_map_count), and loading another XLA program "
        f"needs up to a few hundred more; LLVM would abort the process. Drop "
        f"compiled runners that are no longer needed, serve fewer models per "
        f"process, or raise the limit, e.g. sysctl -w vm.max_map_count=262144"
    )
