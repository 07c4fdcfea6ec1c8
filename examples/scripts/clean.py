"""A script that cleans up after itself: it builds a large temporary list, then streams the same work through a
generator; nothing is left allocated at the end.

    pyworkers run examples/scripts/clean.py

Argument: how many numbers to process (default 300000).
"""
import sys
import time


def squares(n):
    for i in range(n):
        yield i * i


def main(n):
    numbers = [i * i for i in range(n)]  # a temporary list: freed when main() returns
    total = sum(numbers)
    del numbers
    time.sleep(0.2)
    assert total == sum(squares(n))  # the same, one number at a time
    print('sum of %d squares: %d' % (n, total))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300000)
