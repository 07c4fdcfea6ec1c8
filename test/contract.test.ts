/**
 * The contracts that hold the layout together: TypeScript and Python agree on the wire constants, the host
 * checks the protocol version of the worker it started, and no import circle carries values.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WorkerStartError } from '../src/index.js';
import * as frames from '../src/protocol/frames.js';
import { PART_MIN } from '../src/protocol/encode.js';
import { pool, rejection } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** `NAME = 123` / `NAME = 0x01` / `NAME = 1 << 16` lines of a Python module. */
function pythonConstants(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of readFileSync(path.join(ROOT, file), 'utf8').matchAll(/^([A-Z_]+) = (0x[0-9a-fA-F]+|\d+(?: << \d+)?)\b/gm)) {
    const [base, shift] = m[2]!.split(' << ');
    out.set(m[1]!, Number(base) * 2 ** Number(shift ?? 0));
  }
  return out;
}

describe('wire contract', () => {
  const py = pythonConstants('python/_pyworkers/protocol.py');

  test('every frame kind has the same number on both sides, and no kind is missing', () => {
    // protocol.py lists the kinds from its "host -> worker, data channel" comment to MARSHAL_VERSION
    const text = readFileSync(path.join(ROOT, 'python/_pyworkers/protocol.py'), 'utf8');
    const section = text.slice(text.indexOf('# host -> worker, data channel'), text.indexOf('MARSHAL_VERSION ='));
    const pyKinds = Object.fromEntries([...section.matchAll(/^([A-Z_]+) = (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]).sort());
    assert.deepStrictEqual(pyKinds, Object.fromEntries(Object.entries(frames.Kind).sort()));
  });

  test('flags, part kinds, the protocol version and the part threshold agree', () => {
    for (const name of ['FLAG_TAGGED', 'FLAG_PARTS', 'FLAG_NESTED', 'FLAG_RETURN_REF', 'PART_BYTES', 'PART_BUFFER', 'PROTOCOL_VERSION', 'MAGIC'] as const) {
      assert.equal(py.get(name), frames[name], name);
    }
    assert.equal(pythonConstants('python/_pyworkers/values.py').get('PART_MIN'), PART_MIN);
  });

  test('the host refuses a worker whose runtime speaks another protocol version', async () => {
    // setup runs before the worker answers the handshake: make it claim another version
    const error = await rejection(pool({ setup: 'import _pyworkers.protocol as p\np.PROTOCOL_VERSION = 99' }));
    assert.ok(error instanceof WorkerStartError);
    assert.match(error.message, new RegExp(`speaks protocol version 99, not ${frames.PROTOCOL_VERSION}`));
  });
});

describe('layout', () => {
  /** src/**.ts → the modules it imports for their values (`import type` and `export type` carry none). */
  function valueImports(): Map<string, string[]> {
    const graph = new Map<string, string[]>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith('.ts')) {
          const text = readFileSync(file, 'utf8');
          const deps: string[] = [];
          for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'(\.[^']+)\.js'/gm)) {
            if (m[1]) continue;
            const spec = m[0].includes('{') && /\{\s*(type\s+\w+\s*,?\s*)+\}/.test(m[0]) ? null : m[2]!;
            if (spec) deps.push(path.resolve(path.dirname(file), `${spec}.ts`));
          }
          graph.set(file, deps);
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    return graph;
  }

  test('no import circle carries values', () => {
    const graph = valueImports();
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(ROOT, f)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) visit(dep, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    assert.deepStrictEqual(cycles, []);
  });

  test('the Python runtime defines RUNTIME_DIR once and control does not reach into the worker', () => {
    const dir = path.join(ROOT, 'python', '_pyworkers');
    const defining = readdirSync(dir).filter((f) => f.endsWith('.py') && /^RUNTIME_DIR = /m.test(readFileSync(path.join(dir, f), 'utf8')));
    assert.deepStrictEqual(defining, ['paths.py']);
    assert.doesNotMatch(readFileSync(path.join(dir, 'control.py'), 'utf8'), /from \.worker import|import _pyworkers\.worker/);
  });
});
