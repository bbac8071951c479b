"""Cold start: how long a new process takes to import meanfield and to start computing.

Three times, each in a fresh process, best of 5 (after one untimed run that fills the numba cache):

* ``import meanfield`` (the package imports its submodules lazily);
* ``import meanfield`` and reaching the flow API (``meanfield.particle_flow``, ``meanfield.Model``), which loads
  NumPy, SciPy, numba and starts numba's threads;
* ``meanfield run examples/configs/quickstart.toml``: the time from the start of the process to the first call of
  the compiled integrator (``advance``), i.e. when the simulation starts computing, and the whole run.

    python benchmarks/bench_cold_start.py       # from the repository root; writes benchmarks/out/cold_start.{json,md}
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import machine, write

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import sys, time
t0 = float(sys.argv[1])
import meanfield._kernels as K
advance = K.BUILTIN.advance
first = []


def timed(*args):
    if not first:
        first.append(time.time() - t0)
    return advance(*args)


K.BUILTIN.advance = timed
from meanfield.cli import main
try:
    main(["run", sys.argv[2], "--quiet", "--out", sys.argv[3]])
finally:
    print(first[0], time.time() - t0)
"""


def _process_seconds(code):
    t0 = time.time()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tempfile.gettempdir())
    return time.time() - t0


def _quickstart(out):
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", _RUN, repr(t0), str(ROOT / "examples/configs/quickstart.toml"), out],
                          check=True, capture_output=True, text=True)
    first, total = map(float, proc.stdout.split()[-2:])
    return first, total


def main():
    rows = []
    with tempfile.TemporaryDirectory() as out:
        _quickstart(out)  # fills the numba cache if needed
        for name, fn in [("import meanfield", lambda: _process_seconds("import meanfield")),
                         ("import meanfield + flow API",
                          lambda: _process_seconds("import meanfield as mf; mf.particle_flow; mf.Model")),
                         ("quickstart: start computing", lambda: _quickstart(out)[0]),
                         ("quickstart: whole run", lambda: _quickstart(out)[1])]:
            rows.append({"what": name, "best of 5 (s)": min(fn() for _ in range(5))})
            print(rows[-1], flush=True)
    write("cold_start", rows, machine())


if __name__ == "__main__":
    main()
