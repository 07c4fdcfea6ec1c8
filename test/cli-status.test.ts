/**
 * The live status line of `pyworkers run`, with fake timers: redrawn in place on a terminal, a plain line every
 * few seconds elsewhere, nothing with --quiet; never drawn over a line the script has not finished.
 */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { StatusLine, statusText, type StatusFigures } from '../src/cli/status.js';
import { Passthrough } from '../src/cli/passthrough.js';

// mock.timers is experimental on Node 20: it says so once per run, which is noise in the test output.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (!String(warning).includes('MockTimers')) (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const MiB = 1024 * 1024;
const figures: StatusFigures = { elapsedMs: 12_345, rss: 45 * MiB, traced: 30 * MiB, tracedPeak: 31 * MiB, collections: [120, 11, 1] };

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 100, write: (t: string) => writes.push(t) } };
}

test('the status text holds elapsed time, RSS, traced current and peak, gc collections', () => {
  assert.equal(statusText(figures), '12.3s  RSS 45.0 MiB  traced 30.0 MiB (peak 31.0 MiB)  gc 120/11/1');
  assert.equal(statusText({ ...figures, traced: null, tracedPeak: null }), '12.3s  RSS 45.0 MiB  gc 120/11/1');
});

test('on a terminal: redrawn in place a few times a second, cleared before the script writes', () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const { writes, stream } = sink(true);
    const line = new StatusLine(stream, 'tty', () => figures);
    line.start();
    mock.timers.tick(1000);
    assert.equal(writes.length, 4);
    // eslint-disable-next-line no-control-regex
    for (const w of writes) assert.match(w, /^\r\x1b\[2K.*pyworkers ▸ 12\.3s {2}RSS 45\.0 MiB/);
    writes.length = 0;
    line.clear();
    assert.deepEqual(writes, ['\r\x1b[2K']);
    line.wrote('half a line');
    writes.length = 0;
    mock.timers.tick(1000);
    assert.deepEqual(writes, [], 'not drawn over an unfinished line');
    line.wrote(' ended\n');
    mock.timers.tick(250);
    assert.ok(writes.length >= 1);
    line.stop();
    writes.length = 0;
    mock.timers.tick(1000);
    assert.deepEqual(writes, []);
  } finally {
    mock.timers.reset();
  }
});

test('on a terminal with NO_COLOR: the line is drawn without colours or styles', () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const saved = process.env.NO_COLOR;
  process.env.NO_COLOR = '1';
  try {
    const { writes, stream } = sink(true);
    const line = new StatusLine(stream, 'tty', () => figures);
    line.start();
    mock.timers.tick(250);
    assert.ok(writes.length >= 1);
    // eslint-disable-next-line no-control-regex
    for (const w of writes) assert.match(w, /^\r\x1b\[2Kpyworkers ▸ 12\.3s[^\x1b]*$/);
    line.stop();
  } finally {
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
    mock.timers.reset();
  }
});

test('not on a terminal: a plain line every 5 seconds; --quiet: nothing', () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const plain = sink(false);
    const line = new StatusLine(plain.stream, 'plain', () => figures);
    line.start();
    mock.timers.tick(4999);
    assert.deepEqual(plain.writes, []);
    mock.timers.tick(1);
    assert.deepEqual(plain.writes, ['[pyworkers] 12.3s  RSS 45.0 MiB  traced 30.0 MiB (peak 31.0 MiB)  gc 120/11/1\n']);
    line.stop();
    const quiet = sink(false);
    const off = new StatusLine(quiet.stream, 'off', () => figures);
    off.start();
    mock.timers.tick(60_000);
    assert.deepEqual(quiet.writes, []);
  } finally {
    mock.timers.reset();
  }
});

test('the pass-through cuts the end marker out, even split across chunks, and tells when it came', async () => {
  const out: string[] = [];
  const marker = '\u0000pyworkers-end-abc\u0000';
  const p = new Passthrough({ write: (t: string) => out.push(t) }, marker);
  let drained = false;
  void p.drained.then(() => (drained = true));
  p.push('hello\n');
  p.push('no newline \u0000 NUL kept');
  p.push('tail\u0000pyworkers-');
  await Promise.resolve();
  assert.equal(drained, false);
  p.push('end-abc\u0000');
  await p.drained;
  assert.equal(out.join(''), 'hello\nno newline \u0000 NUL kepttail');
  p.push('late\n');
  assert.equal(out.join(''), 'hello\nno newline \u0000 NUL kepttaillate\n');
});
