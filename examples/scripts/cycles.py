"""Objects the garbage collector keeps instead of freeing: with gc.DEBUG_SAVEALL (part of gc.DEBUG_LEAK, often used to
debug leaks), every unreachable reference cycle lands in gc.garbage and stays there. The report
names what gc.garbage holds.

    pyworkers run examples/scripts/cycles.py
"""
import gc


class Session:
    def __init__(self, name):
        self.name = name
        self.peer = None

    def __repr__(self):
        return 'Session(%r)' % self.name


def connect(a, b):
    first, second = Session(a), Session(b)
    first.peer, second.peer = second, first  # a reference cycle
    return first


gc.set_debug(gc.DEBUG_SAVEALL)
for i in range(50):
    connect('client-%d' % i, 'server-%d' % i)  # unreachable at once, but only the collector can see it
found = gc.collect()
print('the collector found %d objects in cycles; gc.garbage keeps %d' % (found, len(gc.garbage)))
