"""A script that takes its time (for --timeout): it ticks every 100 ms for the given seconds (default 30).

    pyworkers run --timeout 1s examples/scripts/slow.py
"""
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
end = time.monotonic() + seconds
ticks = 0
while time.monotonic() < end:
    time.sleep(0.1)
    ticks += 1
print('ticked %d times' % ticks)
