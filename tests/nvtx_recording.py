"""record_ranges: the names of the NVTX ranges ddx opens inside a block, for tests (no hook in ddx.profiling).

ddx.profiling.nvtx_range imports `nvtx` when it opens a range, so putting a recording stand-in for the
module into sys.modules sees every range, in order; the stand-in still opens the real range when the nvtx
package is installed, so the real call is exercised as well.
"""

import contextlib
import sys
import types


@contextlib.contextmanager
def record_ranges():
    """Yield a list that collects the names of the ranges opened inside the block, in the order they open."""
    names = []
    real = sys.modules.get("nvtx")
    if real is None:
        try:
            import nvtx as real
        except ImportError:
            real = None

    def annotate(name, domain=None):
        names.append(name)
        return real.annotate(name, domain=domain) if real is not None else contextlib.nullcontext()

    previous = sys.modules.get("nvtx")
    sys.modules["nvtx"] = types.SimpleNamespace(annotate=annotate)
    try:
        yield names
    finally:
        if previous is None:
            sys.modules.pop("nvtx", None)
        else:
            sys.modules["nvtx"] = previous
