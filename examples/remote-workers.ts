/**
 * Workers on another machine: an agent (what `pyworkers serve` runs) and a pool that leases its workers. Here
 * both run in this process on loopback, without TLS (allowed on loopback only), so that the example runs as is;
 * on real machines the agent is `pyworkers serve --listen 0.0.0.0:7700 --tls-cert ... --tls-key ...` and the
 * pool names it in `endpoints` with the token and the CA (docs/remote.md).
 *
 *   node --import tsx examples/remote-workers.ts
 */
import { randomBytes } from 'node:crypto';
import { createPool, startAgent } from '../src/index.js';

const token = randomBytes(24).toString('hex');

// The agent: two worker processes, each capped at 256 MiB, recycled after 1,000 calls.
const agent = await startAgent({ listen: '127.0.0.1:0', insecure: true, token, workers: 2, maxMemory: '256MiB', recycle: { maxCalls: 1000 } });
console.log(`agent listening on 127.0.0.1:${agent.address.port}`);

// The host: the same API as a local pool.
const pool = await createPool({ remote: { endpoints: [`127.0.0.1:${agent.address.port}`], token, insecure: true } });
try {
  await pool.exec('import statistics\ndef summary(xs):\n    return {"mean": statistics.fmean(xs), "stdev": statistics.stdev(xs)}');
  console.log('summary:', await pool.call('__main__', 'summary', [[2, 4, 4, 4, 5, 5, 7, 9]]));

  const ctx = pool.context(); // a namespace on one remote worker
  await ctx.exec('seen = []');
  for (const word of ['remote', 'workers']) await ctx.exec(`seen.append(${JSON.stringify(word)})`);
  console.log('context:', await ctx.eval('" ".join(seen)'));
  await ctx.close();

  for (const w of (await pool.memoryStats()).workers) {
    console.log(`worker ${w.workerId} on ${w.host}: pid ${w.pid}, ${(w.rss! / 2 ** 20).toFixed(1)} MiB resident, cap ${(w.memoryLimit! / 2 ** 20).toFixed(0)} MiB`);
  }
  console.log('agent:', agent.stats());
} finally {
  await pool.close();
  await agent.close();
}
