/**
 * Ctrl-C on `pyworkers run`, as a terminal sends it (SIGINT to the command): the first interrupts the script, the
 * second ends a script that ignores interrupts. Each ends with the report and exit status 130. (The third, which
 * leaves without a report, is an escape hatch for a report that hangs: signals sent close together merge, and the
 * report is written within milliseconds of the second, so no test can place a third one reliably.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TMP = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-ctrlc-'));

/** Grows by 1 MB every 10 ms; prints "ready" once running. */
const GROWING = 'import sys, time\ndata = []\nprint("ready", flush=True)\nwhile True:\n    data.append(bytearray(1_000_000))\n    time.sleep(0.01)\n';
const IGNORING = `import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n${GROWING}`;

interface Ended {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Run a script under `pyworkers run`; once it printed "ready", wait `delays[i]` ms before each SIGINT. */
function runAndInterrupt(name: string, source: string, delays: number[], extra: string[] = []): Promise<Ended> {
  const file = path.join(TMP, name);
  writeFileSync(file, source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', ...extra, file], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let started = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!started && stdout.includes('ready\n')) {
        started = true;
        let at = 0;
        for (const delay of delays) {
          at += delay;
          setTimeout(() => {
            child.kill('SIGINT');
          }, at);
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('Ctrl-C on pyworkers run', { concurrency: 3 }, () => {
  test('once: the script gets KeyboardInterrupt and the report shows where its memory went', async () => {
    const out = path.join(TMP, 'once.json');
    const r = await runAndInterrupt('once.py', GROWING, [600], ['--json', out]);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted \(Ctrl-C\)/);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.outcome.ending, 'interrupted');
    assert.ok(report.wallTimeMs >= 600, `${report.wallTimeMs}`);
    assert.ok(report.memory.peakRssAt > 0 && report.memory.peakRssAt <= report.wallTimeMs + 1, JSON.stringify(report.memory));
    const top = report.top[0];
    assert.deepEqual([path.basename(top.file), top.line], ['once.py', 5]);
    assert.equal(top.library, null, 'a line of the script itself has no library frame beside it');
    assert.match(r.stdout, /\n$/);
  });

  test('once, on a script that ignores SIGINT: ended after the grace period; wall time and readings run until then', async () => {
    const out = path.join(TMP, 'ignoring.json');
    const r = await runAndInterrupt('ignoring.py', IGNORING, [1500], ['--json', out]);
    assert.equal(r.code, 130, r.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.outcome.ending, 'interrupted');
    // The script ran 1500 ms after "ready", then 1000 ms more until its process was ended.
    assert.ok(report.wallTimeMs >= 2400, `wall time ${report.wallTimeMs} ms`);
    assert.ok(report.memory.peakRssAt >= 1500, `peak at ${report.memory.peakRssAt} ms`);
    assert.ok(report.timeline.length > 3);
    assert.match(r.stdout, /pyworkers report: .*ignoring\.py/);
    assert.match(r.stdout, /\n$/);
  });

  test('twice, on a script that ignores SIGINT: the second ends it at once, and the report is still written', async () => {
    const out = path.join(TMP, 'twice.json');
    const r = await runAndInterrupt('twice.py', IGNORING, [800, 150], ['--json', out]);
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.signal, null, 'the command exits by itself, it is not killed by the second SIGINT');
    assert.ok(existsSync(out), 'JSON report written');
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.outcome.ending, 'interrupted');
    assert.ok(report.wallTimeMs >= 900 && report.memory.peakRssAt <= report.wallTimeMs + 1, JSON.stringify(report.memory));
    assert.match(r.stdout, /pyworkers report: .*twice\.py/);
    assert.match(r.stdout, /\n$/, 'the terminal is left at the start of a line');
    assert.doesNotMatch(r.stderr, /no report/);
  });
});
