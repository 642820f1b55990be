"""A child that logs far past a pipe's 64 KiB after its ready line, then says it got through (see
test_child_process_drain)."""

import sys
import time
from pathlib import Path

print("READY:1", flush=True)
for i in range(20_000):
    print(f"log line {i:06d} " + "x" * 40, file=sys.stderr)
sys.stderr.flush()
Path(sys.argv[1]).write_text("through")
time.sleep(60)
