/**
 * The basics of pyworkers: a pool, calls, eval, exec, contexts, values, errors, and the default pool `py`.
 *
 *   node --import tsx examples/basics.ts
 */
import { createPool, ConversionError, py, PythonError, tuple } from '../src/index.js';

// A pool of two Python worker processes; resolves once both have answered.
await using pool = await createPool({ workers: 2 });
console.log('Python', pool.version());

// call(module, function, args, { kwargs })
console.log('sqrt:', await pool.call('math', 'sqrt', [16])); // 4
console.log('json:', await pool.call('json', 'dumps', [{ b: 1, a: [1, 2] }], { kwargs: { sort_keys: true } }));
console.log('split:', await pool.call('builtins', 'str.split', ['a-b-c-d', '-'], { kwargs: { maxsplit: 2 } }));

// eval(expression, locals): the locals never persist in the worker
console.log('eval:', await pool.eval('x * y', { x: 5, y: 5 })); // 25
console.log('lambda:', await pool.eval('sorted(words, key=lambda w: -len(w))', { words: ['a', 'ccc', 'bb'] }));

// exec(code): runs in __main__ of every worker (and of every worker started later)
await pool.exec('def double(x):\n    return x * 2');
console.log('double:', await pool.call('__main__', 'double', [21])); // 42, on any worker

// async def functions are awaited in the worker
await pool.exec('import asyncio\nasync def later(x):\n    await asyncio.sleep(0.01)\n    return x');
console.log('async:', await pool.call('__main__', 'later', ['awaited']));

// A context: a namespace of its own, pinned to one worker
{
  await using ctx = pool.context();
  await ctx.exec('counter = 0');
  for (let i = 0; i < 5; i++) await ctx.exec('counter += 1');
  console.log('counter:', await ctx.eval('counter')); // 5
  await ctx.exec('def greet(name):\n    return f"hello {name} ({counter})"');
  console.log('greet:', await ctx.call('__main__', 'greet', ['ctx']));
  const other = pool.context();
  console.log('other context sees counter:', await other.eval("'counter' in globals()")); // false
  await other.close();
} // ctx.close() frees the namespace

// Values both ways: big ints as bigint, tuples, bytes, Maps, Sets, Dates
console.log('2**70:', await pool.eval('2**70')); // 1180591620717411303424n
console.log('types:', await pool.eval('[type(v).__name__ for v in values]', { values: [1, 1.5, 2n ** 70n, 'text', null, new Uint8Array([1]), tuple(1, 2), new Map([[1, 'a']]), new Set([1]), new Date(0)] }));
console.log('back:', await pool.eval('[(1, 2), b"ab", {1: "a"}, {"k": "v"}, {3}, float("nan")]'));

// Errors: a PythonError with the Python type, message and traceback
try {
  await pool.eval('1 / 0');
} catch (error) {
  if (error instanceof PythonError) console.log('error:', error.code, error.type, error.pythonMessage);
}
try {
  await pool.eval('object()');
} catch (error) {
  if (error instanceof ConversionError) console.log('refused:', error.code);
}

// Output of print() is forwarded (an event, and by default this process's stderr), never mixed with results
pool.on('stdout', ({ workerId, text }) => process.stdout.write(`[worker ${workerId}] ${text}`));
console.log('printed and returned:', await pool.eval('print("hello from Python") or "result"'));

// The default pool: created on first use, and it does not keep the script alive
console.log('factorial(20):', await py.call('math', 'factorial', [20]));
console.log('done');
