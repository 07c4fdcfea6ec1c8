"""What the `pyworkers` command runs in its worker (see src/cli/).

`run_script` runs a script as `__main__`, the way `python script.py args...` would: its own `sys.argv`,
`sys.path[0]` set to the script's folder, `SystemExit` turned into an exit status, uncaught exceptions printed
through `sys.excepthook`, atexit handlers and non-daemon threads waited for. The script's module stays alive
afterwards (as it would until interpreter shutdown) so that the host can see what it still holds; `release()`
drops it.

The other functions serve the reports: the final allocation sites with their source lines and function names,
and a Python-repr `eval` for `pyworkers eval`. Everything the runner needs is imported when it is (call
`prepare` before tracing starts), so that its own imports never show among the script's allocations.
"""
import ast
import atexit
import builtins
import gc
import linecache
import os
import sys
import threading
import time
import traceback
import tracemalloc
import types
from importlib.machinery import SourceFileLoader

from .paths import RUNTIME_DIR

try:
    import resource
except ImportError:  # not on Windows
    resource = None

_kept = None          # the last script's module, kept for the final memory snapshot
_sampler = None       # the tracing windows of the last script (sample mode)
_final_objects = None # {line: a few objects allocated there}, found as _final was taken (for chains)
_final = None         # tracemalloc snapshot taken as the script's code returned
_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
_ast_cache = {}       # filename -> list of (first, last, qualname), or None when unreadable
KEPT_ALIVE_ROWS = 3   # the report's biggest lines whose references are followed to a root


def _exit_status(exc):
    """The process exit status `python` would give for SystemExit `exc` (printing a non-int code)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write('%s\n' % (code,))
        sys.stderr.flush()
    except BaseException:
        pass
    return 1


def _flush_std():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass


def _use_real_stdout():
    """The command passes the script's output through from the process's own stdout (and ends it with a marker
    written there): while a script runs, sys.stdout is that, not the data channel (output.py). Returns what to
    restore."""
    current = sys.stdout
    sys.stdout = getattr(current, 'original', current)
    return current


def _write_marker(marker):
    """Tell the host that everything the script wrote before this point has been written."""
    if not marker:
        return
    data = marker.encode('utf-8')
    for fd in (1, 2):
        try:
            os.write(fd, data)
        except OSError:
            pass


def _report_uncaught(exc):
    """Print an uncaught exception as `python` would, without our own frame; survive MemoryError."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename.startswith(RUNTIME_DIR):
        tb = tb.tb_next
    try:
        traceback.clear_frames(tb)  # free the locals of the failed frames (what filled memory, often)
    except BaseException:
        pass
    try:
        exc.__traceback__ = tb
        sys.excepthook(type(exc), exc, tb)
    except BaseException:
        try:
            os.write(2, ('%s\n' % type(exc).__name__).encode())
        except BaseException:
            pass


def _join_threads():
    """Wait for the non-daemon threads the script started, as interpreter shutdown would."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread is not threading.main_thread():
            thread.join()


def _run_atexit():
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass


def prepare():
    """Nothing: calling it imports this module (and what it needs) before tracing starts."""
    return None


def _stop_sampler():
    if _sampler is not None:
        _sampler.stop()


def sampled_sites(top=10):
    """What the tracing windows saw grow (sample mode): {'top': [[file, line, size, count, function, code, library,
    kept alive by]], 'windows', 'tracedSeconds', 'failure'}; None when the last script was not sampled."""
    sampler = _sampler
    if sampler is None:
        return None
    sampler.stop()
    sampler.wait()
    rows = []
    for (filename, lineno), size, count, library, chain in sampler.sites(top):
        fn, code = _describe_one(filename, lineno)
        lib = [library[0], library[1], _describe_one(library[0], library[1])[0]] if library else None
        rows.append([filename, lineno, size, count, fn, code, lib, chain])
    return {'top': rows, 'windows': sampler.windows, 'tracedSeconds': sampler.traced_seconds, 'failure': sampler.failure}


def _take_final(find_objects=True):
    """Snapshot what is allocated now, as the script's code returns (None when not tracing the whole run), with a
    few objects of each line (see final_sites; not `find_objects`: after MemoryError, the snapshot needs the room);
    answer the memory figures of this moment: {'rss', 'traced',
    'tracedPeak', 'tracemalloc'}."""
    global _final, _final_objects
    _final = _final_objects = None
    figures = {'rss': None, 'traced': None, 'tracedPeak': None, 'tracemalloc': None}
    try:
        with open('/proc/self/statm', 'rb') as f:
            figures['rss'] = int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        if tracemalloc.is_tracing() and _sampler is None:  # (sample mode traces in windows: no final snapshot)
            figures['traced'], figures['tracedPeak'] = tracemalloc.get_traced_memory()
            figures['tracemalloc'] = tracemalloc.get_tracemalloc_memory()
            # before the snapshot, whose list of traces would be a million more objects to look at
            if find_objects:
                from .referrers import objects_by_site
                try:
                    _final_objects = objects_by_site(_user_sites, time.perf_counter() + 2.0)
                except MemoryError:  # (near the memory cap: the snapshot matters more; no chains)
                    _final_objects = {}
            else:
                _final_objects = {}
            _final = tracemalloc.take_snapshot()
    except MemoryError:
        _final = _final_objects = None
    return figures


def run_script(path, argv0, args, marker='', folder=None, sample_frames=None):
    """Run the file at `path` (absolute) as `__main__` with `sys.argv = [argv0, *args]` and `folder` (the
    script's) first on sys.path.

    Returns {'exitCode', 'exception': None | {'type', 'module', 'message'}, 'memory': {'rss', 'traced',
    'tracedPeak'} as the script's code returned}. A KeyboardInterrupt sent by the
    host (timeout, Ctrl-C) propagates, so the call ends as interrupted. With `sample_frames`, allocations are
    traced in windows (sampler.py), with that many frames.
    """
    global _kept, _sampler
    _kept = None
    _sampler = None
    if folder is None:
        path = os.path.abspath(path)
        folder = os.path.dirname(path)
    module = types.ModuleType('__main__')
    namespace = module.__dict__
    namespace.update(__file__=path, __builtins__=builtins, __cached__=None, __spec__=None)
    namespace['__loader__'] = SourceFileLoader('__main__', path)
    saved_argv = sys.argv
    saved_main = sys.modules.get('__main__')
    saved_stdout = _use_real_stdout()
    sys.argv = [argv0] + list(args)
    sys.path.insert(0, folder)
    sys.modules['__main__'] = module
    _kept = module
    if sample_frames:
        from .sampler import Sampler
        _sampler = Sampler(sample_frames, _is_library)
        _sampler.start({id(namespace): '__main__'})
    status = 0
    failure = None
    info = None
    try:
        try:
            with open(path, 'rb') as f:
                source = f.read()
            code = compile(source, path, 'exec', dont_inherit=True)
            del source
            exec(code, namespace)
        except SystemExit as exc:
            status = _exit_status(exc)
        except KeyboardInterrupt:
            _stop_sampler()
            _take_final()
            raise
        except BaseException as exc:
            failure = exc
        if failure is not None and isinstance(failure, MemoryError):
            lift_memory_cap()  # room for the snapshot and the traceback; the frames still hold what filled memory
        _stop_sampler()
        figures = _take_final(find_objects=not isinstance(failure, MemoryError))
        if failure is not None:
            status = 1
            info = {'type': type(failure).__qualname__, 'module': type(failure).__module__ or '', 'message': ''}
            try:
                info['message'] = str(failure)
            except BaseException:
                pass
            _report_uncaught(failure)
            failure = None
        try:
            _join_threads()
            _run_atexit()
        except SystemExit as exc:
            status = _exit_status(exc)
        return {'exitCode': status, 'exception': info, 'memory': figures}
    finally:
        sys.argv = saved_argv
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
        if saved_main is not None:
            sys.modules['__main__'] = saved_main
        _flush_std()
        _write_marker(marker)
        sys.stdout = saved_stdout


def release():
    """Drop the last script's module and collect, so what it held is freed."""
    global _kept
    _kept = None
    return gc.collect()


def lift_memory_cap():
    """Lift the worker's memory cap (RLIMIT_DATA, and RLIMIT_AS if set), so the report can be built after the
    script hit it: as far as the process may (to no limit when privileged, else to the hard limit).
    Returns how many limits were raised."""
    if resource is None:
        return 0
    raised = 0
    for name in ('RLIMIT_AS', 'RLIMIT_DATA'):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, hard = resource.getrlimit(which)
        if soft == resource.RLIM_INFINITY:
            continue
        for wanted in ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (hard, hard)):
            try:
                resource.setrlimit(which, wanted)
                raised += 1
                break
            except (ValueError, OSError):
                pass
    return raised


# ---------------------------------------------------------------------------- sites

def _functions(filename):
    """(first line, last line, qualified name) of every function and class in a Python source file."""
    found = _ast_cache.get(filename, False)
    if found is not False:
        return found
    found = None
    try:
        if os.path.getsize(filename) <= 4 << 20:
            with open(filename, 'rb') as f:
                tree = ast.parse(f.read(), filename)
            found = []

            def visit(node, prefix):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        name = prefix + child.name
                        first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                        found.append((first, child.end_lineno or child.lineno, name))
                        inner = name + ('.<locals>.' if not isinstance(child, ast.ClassDef) else '.')
                        visit(child, inner)
                    elif isinstance(child, ast.Lambda):
                        found.append((child.lineno, child.end_lineno or child.lineno, prefix + '<lambda>'))
                    else:
                        visit(child, prefix)
            visit(tree, '')
    except Exception:
        found = None
    _ast_cache[filename] = found
    return found


def _function_at(filename, line):
    spans = _functions(filename)
    if spans is None:
        return None
    best = None
    for first, last, name in spans:
        if first <= line <= last and (best is None or first >= best[0]):
            best = (first, last, name)
    return best[2] if best else '<module>'


def final_sites(top=10, stacks=300):
    """The report's allocation sites, from the snapshot taken as the script's code returned: the `top` lines and
    the `stacks` tracebacks that hold the most memory, without the runtime's own allocations and frames.

    Tracing stops right after the snapshot is taken:
    analysing a snapshot while tracemalloc still traces is some thirty times slower (every allocation of the
    analysis is traced too). Returns None when not tracing.
    """
    global _final, _final_objects
    tm = tracemalloc
    snapshot, samples = _final, _final_objects
    _final = _final_objects = None
    if snapshot is None:
        if not tm.is_tracing():
            return None
        snapshot = tm.take_snapshot()
    limit = snapshot.traceback_limit
    # What keeps the biggest lines' objects alive: tracemalloc maps objects to lines only while it traces, so a few
    # objects of every user line were found with the snapshot; the chains are followed once tracing is off.
    from .referrers import chains, objects_by_site
    deadline = time.perf_counter() + 8.0
    if samples is None:
        samples = objects_by_site(_user_sites, deadline)
    tm.stop()
    from .snapshots import without_runtime
    snapshot = without_runtime(snapshot)
    by_traceback = snapshot.statistics('traceback')
    total_size = sum(stat.size for stat in by_traceback)
    total_count = sum(stat.count for stat in by_traceback)
    lines = _by_user_line(by_traceback)[:top]
    rows = []
    for (filename, lineno), size, count, library in lines:
        fn, code = _describe_one(filename, lineno)
        lib = None
        if library is not None:
            lib = [library[0], library[1], _describe_one(library[0], library[1])[0]]
        rows.append([filename, lineno, size, count, fn, code, lib, None])
    merged = {}
    for stat in by_traceback:
        frames = list(stat.traceback)  # oldest first
        user = [f for f in frames if not f.filename.startswith(RUNTIME_DIR)]
        if not user:
            continue
        total = getattr(stat.traceback, 'total_nframe', None) or len(frames)
        cut = len(user) == len(frames) and total > len(frames)
        key = (cut,) + tuple((f.filename, f.lineno) for f in user)
        row = merged.get(key)
        if row is None:
            merged[key] = [user, stat.size, stat.count, cut]
        else:
            row[1] += stat.size
            row[2] += stat.count
    ranked = sorted(merged.values(), key=lambda r: r[1], reverse=True)[:stacks]
    out_stacks = []
    for user, size, count, cut in ranked:
        out_stacks.append({
            'frames': [[f.filename, f.lineno, _describe_one(f.filename, f.lineno)[0]] for f in user],
            'size': size, 'count': count, 'truncated': cut,
        })
    # the snapshot's traces go first: a million more objects for the search to index
    del snapshot, by_traceback, merged, ranked
    wanted = lines[:KEPT_ALIVE_ROWS]
    found = chains(samples, [key for key, _, _, _ in wanted], deadline, {id(_kept.__dict__): '__main__'} if _kept is not None else None,
                   {key: size // max(1, count) for key, size, count, _ in wanted})
    for row, chain in zip(rows, found):
        row[7] = chain
    return {'top': rows, 'totalSize': total_size, 'totalCount': total_count, 'stacks': out_stacks, 'frames': limit}


_library_dirs = None


def _is_library(filename):
    """Whether a frame's file is the standard library's or an installed package's, not the user's own."""
    global _library_dirs
    if _library_dirs is None:
        import site
        import sysconfig
        dirs = {sysconfig.get_paths().get(k) for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')}
        try:
            dirs.update(site.getsitepackages())
            dirs.add(site.getusersitepackages())
        except Exception:
            pass
        _library_dirs = tuple(os.path.join(d, '') for d in dirs if d)
    # code given as text ('<setup>', '<exec>', '<string>') is the user's; frozen modules are the interpreter's
    return filename.startswith(('<frozen', '<built-in')) or filename.startswith(_library_dirs)


def _user_sites(traceback):
    """An allocation's site as the report counts it: its innermost frame in the user's files (else its innermost)."""
    for frame in reversed(traceback):  # oldest first
        if not _is_library(frame.filename) and not frame.filename.startswith(RUNTIME_DIR):
            return ((frame.filename, frame.lineno),)
    inner = traceback[-1]
    return ((inner.filename, inner.lineno),)


def _by_user_line(by_traceback):
    """Memory by the user's own line: each traceback's innermost frame in the user's files (a numpy call's line, not
    numpy's), with the library frame that allocated the most beside it; the innermost frame when none is the
    user's. Rows (site, size, count, library site or None), largest first."""
    lines = {}
    for stat in by_traceback:
        frames = stat.traceback  # oldest first
        inner = frames[-1]
        user = None
        for frame in reversed(frames):
            if not _is_library(frame.filename):
                user = frame
                break
        site = user or inner
        key = (site.filename, site.lineno)
        row = lines.get(key)
        if row is None:
            row = lines[key] = [key, 0, 0, {}]
        row[1] += stat.size
        row[2] += stat.count
        lib = (inner.filename, inner.lineno)
        if user is not None and lib != key:
            libs = row[3]
            libs[lib] = libs.get(lib, 0) + stat.size
    out = []
    for key, size, count, libs in lines.values():
        out.append((key, size, count, max(libs, key=libs.get) if libs else None))
    out.sort(key=lambda r: r[1], reverse=True)
    return out


def _describe_one(filename, line):
    if not line or filename.startswith('<'):
        return None, ''
    return _function_at(filename, line), linecache.getline(filename, line).strip()[:200]


def describe(locations):
    """For each [filename, line]: [function name or None, the source line stripped ('' when unknown)]."""
    return [list(_describe_one(filename, line)) for filename, line in locations]


# ---------------------------------------------------------------------------- eval

def evaluate(code, marker='', as_repr=True):
    """Run `code` in __main__; answer its last line's value when that line is an expression (repr() of it when
    `as_repr`), else None. Awaitables are awaited."""
    saved_stdout = _use_real_stdout()
    try:
        try:
            tree = ast.parse(code, '<pyworkers eval>', 'exec')
        except SyntaxError as error:
            raise error.with_traceback(None) from None  # the code's error: no frame of ast.py in its traceback
        namespace = sys.modules['__main__'].__dict__
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        if tree.body:
            exec(compile(tree, '<pyworkers eval>', 'exec'), namespace)
        if last is None:
            return None
        value = eval(compile(last, '<pyworkers eval>', 'eval'), namespace)
        if type(value) is not str and hasattr(value, '__await__'):
            import asyncio
            value = asyncio.run(_await(value))
        return repr(value) if as_repr else value
    finally:
        _flush_std()
        _write_marker(marker)
        sys.stdout = saved_stdout


async def _await(awaitable):
    return await awaitable
