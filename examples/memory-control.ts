/**
 * Memory control in one script: a hard cap, recycling, pressure monitoring and the leak finder.
 * Run: node --import tsx examples/memory-control.ts
 */
import { createPool, formatBytes, PythonError, type PressureEvent } from '../src/index.js';

await using pool = await createPool({
  workers: 1,
  maxMemory: '1GB',
  recycle: { maxRss: '300MB' },
  monitor: { interval: 100, rssWarning: '150MB' },
});

// 1. A call that overflows the cap fails with MemoryError; the worker serves on.
try {
  await pool.eval('b"x" * (2 * 2**30)');
} catch (error) {
  if (error instanceof PythonError) console.log(`cap: ${error.type}, then 1 + 1 = ${await pool.eval('1 + 1')}`);
}

// 2. A pressure event past rssWarning, then recycling of the worker once it grows past maxRss.
const pressure = new Promise<PressureEvent>((resolve) => pool.on('pressure', (e) => e.reason === 'rss' && resolve(e)));
await pool.eval('globals().__setitem__("big", [0] * (25 * 10**6))'); // ~200 MB of list
const keepAlive = setTimeout(() => {}, 10_000); // the monitor's own timer does not keep Node alive
const warning = await pressure;
clearTimeout(keepAlive);
console.log(`pressure: ${warning.reason} ${formatBytes(warning.value)} > ${formatBytes(warning.limit)}`);
const recycled = new Promise((resolve) => pool.once('recycle', resolve));
await pool.eval('globals().__setitem__("bigger", [1] * (25 * 10**6))'); // ~200 MB more
const event = (await recycled) as { reason: string; rss: number };
console.log(`recycled: ${event.reason} at ${formatBytes(event.rss)}`);

// 3. The leak finder: a cache that grows on every call.
await pool.exec('cache = {}\ndef handle(i):\n    cache[i] = bytearray(1000)\n    return len(cache)');
const report = await pool.findLeaks('handle(len(cache))', { iterations: 20 });
const leak = report.leaks[0]!;
console.log(`leak: line ${leak.line} of ${leak.file} grows ${Math.round(leak.bytesPerIteration)} B/iteration`);
