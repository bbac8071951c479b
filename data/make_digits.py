"""Regenerate meanfield/datasets/digits.npz from the copy of the UCI digits inside scikit-learn.

Usage (from the repository root)::

    python data/make_digits.py            # writes meanfield/datasets/digits.npz, prints its sha256
    python data/make_digits.py --check    # only compares a fresh conversion with the committed file

scikit-learn is needed here only; meanfield itself never imports it. The output is byte-for-byte
reproducible: the zip members get a fixed timestamp, and numpy's .npy format 1.0 has no variable fields.
See data/README.md for source, licence and preprocessing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pathlib
import sys
import zipfile

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "meanfield" / "datasets" / "digits.npz"


def convert() -> bytes:
    """The .npz file as bytes: X (1797, 64) uint8 pixels 0..16, y (1797,) uint8 digit labels 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data, target = bunch.data, bunch.target
    assert data.shape == (1797, 64) and target.shape == (1797,), (data.shape, target.shape)
    assert np.array_equal(data, np.round(data)) and data.min() == 0 and data.max() == 16
    assert set(np.unique(target)) == set(range(10))
    arrays = {"X": data.astype(np.uint8), "y": target.astype(np.uint8)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), version=(1, 0), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    blob = convert()
    sha = hashlib.sha256(blob).hexdigest()
    if args.check:
        same = OUT.exists() and OUT.read_bytes() == blob
        print(f"{OUT}: {'identical to' if same else 'DIFFERS from'} a fresh conversion (sha256 {sha})")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(blob)
    print(f"wrote {OUT} ({len(blob)} bytes), sha256 {sha}")
    print("set meanfield.data.DIGITS_SHA256 to this value if it changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
