/**
 * The package as a new user's project sees it: `require('pyworkers')` from CommonJS (Node loads the ES module:
 * Node 20.19+, 22.12+), and a TypeScript project made the way `npm init -y` makes one (CommonJS).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-app-'));
mkdirSync(path.join(dir, 'node_modules'));
symlinkSync(ROOT, path.join(dir, 'node_modules', 'pyworkers'));
writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'commonjs' }));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('packaging', () => {
  test("require('pyworkers') from a CommonJS file", async () => {
    writeFileSync(path.join(dir, 'app.cjs'), "const { createPool } = require('pyworkers');\ncreatePool({ workers: 1 }).then(async (p) => {\n  console.log('sum', await p.eval('sum(range(10))'));\n  await p.close();\n});\n");
    const { stdout } = await run(process.execPath, [path.join(dir, 'app.cjs')], { cwd: dir });
    assert.equal(stdout.trim(), 'sum 45');
  });

  test('a TypeScript project in CommonJS (module: nodenext) compiles against the types and runs', { timeout: 120_000 }, async () => {
    writeFileSync(path.join(dir, 'index.ts'), "import { createPool, NDArray } from 'pyworkers';\nasync function main(): Promise<void> {\n  const pool = await createPool({ workers: 1 });\n  const m = (await pool.eval('x', { x: new NDArray(new Float64Array([1, 2]), [2]) })) as NDArray;\n  console.log('ts', await pool.eval('sum(range(10))'), m.dtype);\n  await pool.close();\n}\nvoid main();\n");
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] },
      files: ['index.ts'],
    }));
    await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir });
    const { stdout } = await run(process.execPath, [path.join(dir, 'out', 'index.js')], { cwd: dir });
    assert.equal(stdout.trim(), 'ts 45 float64');
  });
});
