"""A request handler that leaks memory: every request's record goes into a module-level cache that nothing ever
trims, and every request builds a small tree whose nodes point back at their parent (reference cycles, freed only
by the garbage collector).

    pyworkers run examples/scripts/leaky.py --top 5 --report pyworkers-report.html
    pyworkers leaks examples/scripts/leaky.py:handle_request --iterations 50

Argument: how many requests to handle (default 8000).
"""
import sys
import time

_CACHE = {}  # request id -> record; never evicted: this is the leak


class Node:
    def __init__(self, parent=None):
        self.parent = parent  # a back-reference: parent and child form a cycle
        self.children = []


def parse(body):
    root = Node()
    for _ in range(20):
        root.children.append(Node(root))
    return root


def handle_request(request_id=None):
    if request_id is None:
        request_id = len(_CACHE)  # a new request each call
    body = 'x' * 1024 + str(request_id)
    record = {'id': request_id, 'body': body, 'size': len(body)}
    _CACHE[request_id] = record  # kept forever
    tree = parse(body)  # dropped at return, but its cycles wait for the collector
    return len(tree.children)


def main(requests):
    for i in range(requests):
        handle_request(i)
        if (i + 1) % 1000 == 0:
            print('handled %d requests, the cache holds %d records' % (i + 1, len(_CACHE)))
            time.sleep(0.1)


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
