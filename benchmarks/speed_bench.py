"""Speed benchmark (issue: benchmark against plain decoding, assisted generation and theory).

The same as `tcsd bench`; see tcsd_utils/bench.py for what is measured. Example:

    .venv/bin/python benchmarks/speed_bench.py --taus 0 0.5 1 --k 4 --json outputs/bench.json
"""

import sys

from tcsd_utils.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
