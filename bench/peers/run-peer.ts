/**
 * Child process that measures one peer library: `node --import tsx bench/peers/run-peer.ts NAME`.
 * Reads BENCH_PYTHON (the interpreter to use), BENCH_NUMPY ('1' when it has numpy) and BENCH_QUICK; writes
 * its results as JSON to BENCH_OUT. Each peer runs in its own process so that none of them (an embedded
 * interpreter, a bridge's globals) disturbs the others or pyworkers.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { median, MiB, now, rssOf, sequential, setRetryBudget, sleep, Watch } from '../lib/measure.js';
import { place } from '../lib/pin.js';
import { measureAlone, type Bridge, type CommonResults } from '../lib/subject.js';

const require = createRequire(import.meta.url);
const name = process.argv[2]!;
const python = process.env.BENCH_PYTHON!;
const quick = process.env.BENCH_QUICK === '1';
/** numpy in BENCH_PYTHON: the array rows need it. */
const numpy = process.env.BENCH_NUMPY === '1';

export interface PeerResults extends CommonResults {
  name: string;
  version?: string;
  /** ms, median */
  startup?: number;
  startupNote?: string;
  /** µs, node-calls-python's synchronous call (blocks the event loop) */
  syncLatencyMedian?: number;
  pythonPidFound?: boolean;
  error?: string;
}

/** The installed version of a package (its exports may hide package.json). */
function packageVersion(pkg: string): string {
  let dir = path.dirname(require.resolve(pkg));
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) !== pkg) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json for ${pkg}`);
    dir = up;
  }
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(): Promise<PeerResults> {
  setRetryBudget(quick ? 0 : 30_000);
  const out: PeerResults = { name };
  try {
    out.version = packageVersion(name);
  } catch {
    out.error = 'not installed';
    return out;
  }
  const peer = (await import(`./${name}.js`)) as {
    start(python: string, opts: { numpy: boolean }): Promise<Bridge>;
    ensureBuilt?(log: (line: string) => void): string | undefined;
    syncPing?(): () => unknown;
  };
  if (peer.ensureBuilt) {
    const failure = peer.ensureBuilt((line) => process.stderr.write(`  ${line}\n`));
    if (failure) {
      out.error = failure;
      return out;
    }
  }

  const rssBefore = rssOf(process.pid);
  const startups: number[] = [];
  let bridge: Bridge | undefined;
  const startRuns = name === 'node-calls-python' ? 1 : quick ? 2 : 5;
  for (let i = 0; i < startRuns; i++) {
    const t0 = now();
    bridge = await peer.start(python, { numpy });
    startups.push(now() - t0);
    if (i < startRuns - 1) {
      await bridge.close();
      await sleep(20);
    }
  }
  out.startup = median(startups);
  if (name === 'node-calls-python') out.startupNote = 'in-process: load the addon and libpython, initialise, import, first call (once per process)';
  if (name === 'pythonia') out.startupNote = 'first start includes importing pythonia, which spawns Python';
  const b = bridge!;
  const inProcess = name === 'node-calls-python';
  const pin = (placement: Parameters<typeof place>[0]) => place(placement, [b.pythonPid?.()], inProcess);
  Object.assign(out, await measureAlone(b, { latencyCount: quick ? 500 : 2000, throughputMs: quick ? 200 : 500, rounds: quick ? 1 : 3, sizedBudgetMs: quick ? 300 : 1500 }, pin, new Watch(() => [b.pythonPid?.()])));
  if (peer.syncPing) {
    const ping = peer.syncPing();
    out.syncLatencyMedian = median(await sequential(async () => ping(), quick ? 1000 : 10000, 1000)) * 1000;
  }
  await sleep(200);
  const pid = b.pythonPid?.();
  out.pythonPidFound = pid !== undefined;
  out.idleRssMiB = pid ? rssOf(pid) / MiB : (rssOf(process.pid) - rssBefore) / MiB;
  await b.close();
  return out;
}

let results: PeerResults;
try {
  results = await main();
} catch (error) {
  results = { name, error: `failed: ${(error as Error).message}` };
}
writeFileSync(process.env.BENCH_OUT!, JSON.stringify(results));
process.exit(0);
