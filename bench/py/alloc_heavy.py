"""An allocation-heavy loop for the `pyworkers run` rows: builds and drops many small objects, keeps a few."""
import sys

kept = []


def work(n):
    rows = [{'id': i, 'name': 'row-%d' % i, 'tags': [i, i + 1]} for i in range(n)]
    total = sum(len(r['name']) for r in rows)
    kept.append(rows[0])
    return total


for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 300):
    work(10_000)
