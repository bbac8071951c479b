"""At which snapshot does HDF5 first rewrite, in place, a block larger than a page? (docs/hdf5-format.md,
"Crash safety": up to that snapshot no write a SIGKILL could tear touches committed data.)

    python benchmarks/h5_page_bound.py [--rows 3000] [--compression gzip|none]

Writes one dataset the way meanfield.h5md.Recorder writes particle snapshots (SWMR, paged aggregation, one
chunk per row, Fletcher-32 and the chosen compression) under strace, and reports the first row whose flush
rewrote more than a page of bytes already in the file. Needs strace.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

WRITER = """
import sys, h5py, numpy as np
from meanfield.h5md import PAGE_SIZE
path, rows, comp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
f = h5py.File(path, "w", libver="latest", fs_strategy="page", fs_page_size=PAGE_SIZE)
opts = dict(fletcher32=True) if comp == "none" else dict(compression=comp, fletcher32=True)
d = f.create_dataset("v", shape=(0, 40, 4), maxshape=(None, 40, 4), chunks=(1, 40, 4), dtype="f8", **opts)
f.swmr_mode = True
rng = np.random.default_rng(0)
for i in range(rows):
    d.resize(i + 1, axis=0)
    d[i] = rng.normal(size=(40, 4))
    f.flush()
    sys.stderr.write(f"ROW {i}\\n")
    sys.stderr.flush()
f.close()
"""

PWRITE = re.compile(r"pwrite64\(\d+, .*, (\d+), (\d+)\) = \d+$")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--compression", default="gzip", choices=["gzip", "none"])
    args = ap.parse_args()
    page = os.sysconf("SC_PAGE_SIZE")
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.txt")
        subprocess.run(["strace", "-f", "-s", "0", "-o", trace, "-e", "trace=pwrite64,write", sys.executable,
                        "-c", WRITER, os.path.join(tmp, "x.h5"), str(args.rows), args.compression],
                       check=True, stderr=subprocess.DEVNULL)
        row, written = 0, bytearray()  # 1 where the file holds bytes already
        for line in open(trace):
            if "write(2," in line:
                row += 1
                continue
            m = PWRITE.search(line)
            if not m:
                continue
            size, offset = int(m.group(1)), int(m.group(2))
            end = offset + size
            if len(written) < end:
                written.extend(bytes(end - len(written)))
            if size > page and any(written[offset:end]):
                print(f"first in-place write larger than a page ({size} bytes at {offset}) while writing "
                      f"snapshot {row + 1} ({args.compression}); snapshots 1..{row} are safe")
                return
            written[offset:end] = b"\1" * size
        print(f"no in-place write larger than a page in {args.rows} snapshots")


if __name__ == "__main__":
    main()
