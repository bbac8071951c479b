"""The numba cache of the kernels is dropped when any kernel source changes (callers embed their callees)."""

import shutil
from pathlib import Path

from meanfield import _kernels


def test_cache_dropped_when_a_kernel_source_changes(tmp_path):
    src = Path(_kernels.__file__).parent
    folder = tmp_path / "_kernels"
    folder.mkdir()
    for f in src.glob("*.py"):
        shutil.copy(f, folder / f.name)
    cache = folder / "__pycache__"
    cache.mkdir()
    assert _kernels.drop_stale_cache(folder) is False  # first look: nothing cached yet, digest written
    (cache / "advance.advance-1.py311.nbi").write_bytes(b"index")
    (cache / "advance.advance-1.py311.1.nbc").write_bytes(b"code")
    assert _kernels.drop_stale_cache(folder) is False  # unchanged sources: the cache stays
    assert (cache / "advance.advance-1.py311.nbi").exists()
    with open(folder / "activation.py", "a") as f:  # an edit to a callee only
        f.write("\n# edited\n")
    assert _kernels.drop_stale_cache(folder) is True
    assert not list(cache.glob("*.nb*"))
    assert _kernels.drop_stale_cache(folder) is False
