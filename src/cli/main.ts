#!/usr/bin/env node
/**
 * The `pyworkers` executable (package.json "bin"): runs the command line and exits with its code.
 */
import { main } from './cli.js';
import { EXIT } from './outcome.js';
import type { Io } from './io.js';

const io: Io = { stdout: process.stdout, stderr: process.stderr };
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; should a handle linger, do not hang.
    setTimeout(() => process.exit(code), 3000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`pyworkers: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = EXIT.internal;
  },
);
