/**
 * Memory control in one script: a hard cap, recycling, pressure monitoring and the leak finder.
 * Run: node --import tsx examples/memory-control.ts
 */
import { createPool, formatBytes, PythonError } from '../src/index.js';

await using pool = await createPool({
  workers: 1,
  maxMemory: '256MB',
  recycle: { maxRss: '200MB' },
  monitor: { interval: 100, rssWarning: '150MB' },
});

// 1. A call that overflows the cap fails with MemoryError; the worker serves on.
try {
  await pool.eval('b"x" * (1024 * 2**20)');
} catch (error) {
  if (error instanceof PythonError) console.log(`cap: ${error.type}, then 1 + 1 = ${await pool.eval('1 + 1')}`);
}

// 2. Pressure events, then recycling of a worker that grew past maxRss.
pool.once('pressure', (e) => console.log(`pressure: ${e.reason} ${formatBytes(e.value)} > ${formatBytes(e.limit)}`));
const recycled = new Promise((resolve) => pool.once('recycle', resolve));
await pool.eval('globals().__setitem__("big", [0] * (25 * 10**6))'); // ~200 MB of list
const event = (await recycled) as { reason: string; rss: number };
console.log(`recycled: ${event.reason} at ${formatBytes(event.rss)}`);

// 3. The leak finder: a cache that grows on every call.
await pool.exec('cache = {}\ndef handle(i):\n    cache[i] = bytearray(1000)\n    return len(cache)');
const report = await pool.findLeaks('handle(len(cache))', { iterations: 20 });
const leak = report.leaks[0]!;
console.log(`leak: line ${leak.line} of ${leak.file} grows ${Math.round(leak.bytesPerIteration)} B/iteration`);
