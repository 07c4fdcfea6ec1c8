"""A small allocation-heavy workload for the profiling examples (see top10.py in examples/memory)."""


def create_list():
    return [number for number in range(10000)]


def create_strings(n):
    return [str(number) * 2 for number in range(n)]


def main():
    lists = [create_list() for _ in range(5)]
    strings = create_strings(20000)
    joined = ' '.join(strings)
    return lists, strings, joined


kept = []


def run():
    kept.append(main())
    return len(kept)
