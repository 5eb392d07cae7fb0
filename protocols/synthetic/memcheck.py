"""Peak memory of rendering one long record: is it flat in the duration?

    python -m protocols.synthetic.memcheck [--tier mmpd_like] [--minutes 1 5]

Each duration runs in a fresh subprocess that streams the record's frames in preprocessing-sized
blocks (as the cache writer does) and reports its peak RSS (``resource.getrusage``) and the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def _child(tier: str, minutes: float) -> None:
    import resource

    from protocols.preprocess import block_frames
    from protocols.synthetic import SyntheticDataset

    t0 = time.time()
    rec = next(SyntheticDataset(tier=tier, n_subjects=1, duration_s=60.0 * minutes).records())
    n = 0
    for block in rec.frames.iter_blocks(block_frames(rec.frames.height, rec.frames.width)):
        n += len(block)
    print(json.dumps({"tier": tier, "minutes": minutes, "frames": n, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": round(time.time() - t0, 1)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tier", default="mmpd_like")
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.tier, args.minutes[0])
        return 0
    for m in args.minutes:
        out = subprocess.run([sys.executable, "-m", "protocols.synthetic.memcheck", "--child", "--tier", args.tier, "--minutes", str(m)],
                             check=True, capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
