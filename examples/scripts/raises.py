"""A script that fails: it reads a few records, then raises ValueError on a bad one (exit status 1, the traceback
on stderr, as with python).

    pyworkers run examples/scripts/raises.py
"""
import sys

RECORDS = ['12', '7', 'forty-two', '3']


def parse(text):
    return int(text)


def main():
    total = 0
    for record in RECORDS:
        print('reading %r' % record)
        total += parse(record)
    print('total', total)


if __name__ == '__main__':
    sys.stdout.write('starting\n')
    main()
