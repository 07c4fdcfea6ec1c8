"""A script that needs more memory than it is allowed: it keeps 1 MiB strings in a list until MemoryError. Run it
with a cap, which turns the overflowing allocation into MemoryError (exit status 1):

    pyworkers run --max-memory 200MB examples/scripts/cap.py

Without a cap it stops by itself at the limit given as argument, in MiB (default 1024).
"""
import sys

CHUNK = 1 << 20


def main(limit_mib):
    chunks = []
    for i in range(limit_mib):
        chunks.append('x' * CHUNK)  # 1 MiB, kept
        if (i + 1) % 64 == 0:
            print('holding %d MiB' % (i + 1))
    print('done: held %d MiB without hitting a cap' % len(chunks))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
