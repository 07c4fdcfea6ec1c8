"""The python-shell side: JSON lines on stdin and stdout, as python-shell's mode 'json' expects.

Bytes travel as {"b64": "..."}, the usual way with JSON.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'py'))
import benchfns  # noqa: E402


def arg(value):
    if type(value) is dict and 'b64' in value:
        return base64.b64decode(value['b64'])
    return value


def main():
    write = sys.stdout.write
    flush = sys.stdout.flush
    for line in sys.stdin:
        rid, fn, args = json.loads(line)
        result = getattr(benchfns, fn)(*[arg(a) for a in args])
        if type(result) is bytes:
            result = {'b64': base64.b64encode(result).decode('ascii')}
        write(json.dumps([rid, result]) + '\n')
        flush()


main()
