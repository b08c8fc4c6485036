"""Run a command, then print and save its wall and CPU time (children included).

python bench/research/timed.py OUT.json -- vocalis loso --config ... --out ...
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    out, argv = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    t0 = time.time()
    rc = subprocess.call(argv)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    rec = {
        "command": " ".join(argv),
        "rc": rc,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
        "max_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(out, "w") as f:
        json.dump(rec, f, indent=2)
    print(json.dumps(rec))
    return rc


if __name__ == "__main__":
    sys.exit(main())
