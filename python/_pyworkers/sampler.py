"""The `pyworkers run` default mode: tracemalloc only in short windows, not for the whole run.

Tracing every allocation makes an allocation-heavy script 8-20 times slower. Here a thread opens a tracing window
now and then (the first at the start, FIRST_WINDOW seconds, then WINDOW seconds every PERIOD seconds: about a
tenth of a long run),
takes two snapshots inside it, and keeps what grew between them, by the user's own line. Before closing a window
whose lines grew, it follows the references of objects allocated there to a root (referrers.py), once per line.

What it can miss: allocations made outside the windows (a line that allocates only between them; memory held
from before the first window counts only if it was made in one), and short bursts. Memory that grows steadily
is caught by any window. `--mode full` traces everything, at full cost.
"""
import threading
import time
import tracemalloc

from .paths import RUNTIME_DIR
from .snapshots import without_runtime

WINDOW = 0.4     # seconds a window traces
FIRST_WINDOW = 1.0  # ... the first one (a short script is traced whole, what it keeps followed to its root)
PERIOD = 4.0     # seconds from the start of a window to the start of the next
CHAINS = 2       # lines per window whose references are followed
CHAIN_TRIES = 3   # searches for a line's chain before giving up
POLL = 0.01      # seconds between looks at the stop flag
CHAIN_BUDGET = 0.5


class Sampler:
    def __init__(self, frames, is_library, window=WINDOW, period=PERIOD):
        self.frames = frames
        self.is_library = is_library
        self.window = window
        self.period = period
        self.growth = {}      # (file, line) -> [size, count, {library site: size}]
        self.chains = {}      # (file, line) -> what keeps its objects alive
        self.tries = {}       # (file, line) -> searches that found nothing
        self.windows = 0
        self.traced_seconds = 0.0
        self.failure = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='pyworkers-sampler', daemon=True)
        self.extra_roots = None

    def start(self, extra_roots):
        self.extra_roots = extra_roots
        self._thread.start()

    def stop(self):
        """Ask it to stop: the window open, if any, ends now (what it saw counts); its analysis goes on."""
        self._stop.set()

    def wait(self, timeout=30):
        """Wait for the last window's analysis."""
        self._thread.join(timeout)

    def _run(self):
        try:
            while not self._stop.is_set():
                began = time.perf_counter()
                self._window()
                rest = self.period - (time.perf_counter() - began)
                if rest > 0 and self._wait(rest):
                    break
        except Exception as e:  # the script must not notice; the report says it
            self.failure = '%s: %s' % (type(e).__name__, e)
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.stop()

    def _wait(self, seconds):
        """Sleep `seconds` unless asked to stop; whether it was. (Polls: Event.wait allocates a lock each time, which
        a window would count among the script's allocations.)"""
        end = time.perf_counter() + seconds
        while not self._stop.is_set():
            left = end - time.perf_counter()
            if left <= 0:
                return False
            time.sleep(min(left, POLL))
        return True

    def _window(self):
        if tracemalloc.is_tracing():  # the script traces itself: leave it be
            self.failure = 'the script runs tracemalloc itself: no sampling windows'
            self._stop.set()
            return
        began = time.perf_counter()
        length = FIRST_WINDOW if self.windows == 0 else self.window
        tracemalloc.start(self.frames)
        try:
            # Growth between two snapshots inside the window (taking one is a fast copy; analysing it waits until
            # tracing is off, where it is ten times cheaper). When the script ends in the window: all the window
            # saw allocated and still alive (what a short script keeps).
            ended = self._wait(length / 2)
            first = None if ended else tracemalloc.take_snapshot()
            if not ended:
                ended = self._wait(length / 2)
            last = tracemalloc.take_snapshot()
            if ended:
                first = None
            # A window the script ended in (a short script's whole run) keeps tracing while it is analysed, so that
            # what it allocated can be followed to its root at once; others stop (analysing under tracing is
            # many times slower, and the script would run traced meanwhile), and the lines they found get a
            # window of their own for that.
            keep_tracing = ended
            if not keep_tracing:
                tracemalloc.stop()
                self.traced_seconds += time.perf_counter() - began
            grown = self._grown(_by_traceback(first) if first is not None else {}, _by_traceback(last))
            del first, last  # (their traces would be that many more objects for a chain search to look at)
            wanted = [site for site, _ in sorted(grown.items(), key=lambda kv: -kv[1])[:CHAINS]
                      if self.chains.get(site) is None and self.tries.get(site, 0) < CHAIN_TRIES]
            if wanted and not keep_tracing:
                # a window of its own: objects allocated at those lines from now on can be traced back
                began = time.perf_counter()
                tracemalloc.start(self.frames)
                ended = self._wait(self.window)
            if wanted:
                from .referrers import kept_alive_by
                sizes = {site: self.growth[site][0] // max(1, self.growth[site][1]) for site in wanted}
                # (once the script has ended, there is time for a longer search)
                chains = kept_alive_by(wanted, CHAIN_BUDGET * (16 if keep_tracing else 1), self.extra_roots, sizes)
                for site, chain in zip(wanted, chains):
                    if chain:
                        self.chains[site] = chain
                    else:
                        self.tries[site] = self.tries.get(site, 0) + 1
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.stop()
                self.traced_seconds += time.perf_counter() - began
            self.windows += 1

    def _grown(self, first, last):
        """Add what grew from `first` to `last` to the totals, by user line; answer this window's growth by line."""
        grown = {}
        for traceback, (size, count) in last.items():
            size0, count0 = first.get(traceback, (0, 0))
            if size <= size0:
                continue
            frames = [f for f in traceback if not f.filename.startswith(RUNTIME_DIR)]
            if not frames:
                continue
            inner = frames[-1]
            user = next((f for f in reversed(frames) if not self.is_library(f.filename)), None)
            site = ((user or inner).filename, (user or inner).lineno)
            row = self.growth.get(site)
            if row is None:
                row = self.growth[site] = [0, 0, {}]
            row[0] += size - size0
            row[1] += max(0, count - count0)
            if user is not None and (inner.filename, inner.lineno) != site:
                lib = (inner.filename, inner.lineno)
                row[2][lib] = row[2].get(lib, 0) + size - size0
            grown[site] = grown.get(site, 0) + size - size0
        return grown

    def sites(self, top):
        """[(site, size, count, library site or None, chain or None)], most growth first (after wait())."""
        rows = sorted(self.growth.items(), key=lambda kv: -kv[1][0])[:top]
        return [(site, size, count, max(libs, key=libs.get) if libs else None, self.chains.get(site)) for site, (size, count, libs) in rows]


def _by_traceback(snapshot):
    return {stat.traceback: (stat.size, stat.count) for stat in without_runtime(snapshot).statistics('traceback')}
