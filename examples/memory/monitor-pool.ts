/**
 * Monitoring pool memory: collect where the youngest generation nears its threshold, and watch RSS.
 * Run: node --import tsx examples/memory/monitor-pool.ts
 */
import { createPool, formatBytes, type Pool } from '../../src/index.js';

const pool = await createPool({ workers: 2 });

async function monitorMemory(p: Pool): Promise<void> {
  const stats = await p.memoryStats();
  let pressure = false;
  for (const w of stats.workers) {
    const [count] = w.gcCount;
    const threshold = w.gcThreshold[0] ?? 0;
    if (threshold > 0 && count > threshold * 0.8) {
      console.warn(`worker ${w.workerId}: Python memory pressure: ${count}/${threshold}`);
      pressure = true;
    }
  }
  if (pressure) console.log(`collected ${await p.gc()} objects`);
  console.log(`pool rss ${formatBytes(stats.totals.rss)}, calls ${stats.totals.calls}`);
}

// Leave many container objects alive on every worker, with automatic collection off: gen0 fills up.
await pool.gcDisable();
await pool.exec('keep = [[i] for i in range(5000)]');
await monitorMemory(pool);
await pool.gcEnable();

// In a service, on an interval (unref'd so that it never keeps the process alive):
const timer = setInterval(() => void monitorMemory(pool).catch(() => {}), 5000);
timer.unref();
clearInterval(timer);

await pool.close();
