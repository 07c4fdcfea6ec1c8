/**
 * Replies from the worker: OK, ITEMS* and ERROR payloads, decoded. An ERROR's payload is the tuple
 * (kind, type, module, message, detail) that python/_pyworkers/replies.py builds.
 */
import { ConversionError, ProtocolError, PythonError } from '../errors.js';
import { decode } from './decode.js';
import { FLAG_TAGGED } from './frames.js';
import type { HandleFactory } from './handles.js';

/** Decode a reply's payload; `wrapper`: a batch of stream items, whose own level does not count. */
export function decodePayload(flags: number, buf: Buffer, start: number, end: number, wrapper = false, parts?: Uint8Array[], handles?: HandleFactory): unknown {
  return decode(buf, start, end, (flags & FLAG_TAGGED) !== 0, wrapper, parts, handles);
}

const HANDLE_HINT = ". To use it from JavaScript, keep it in the worker behind a handle: callRef() or evalRef() (or the call option returns: 'ref')";

/** Turn an ERROR frame's payload into the error the caller sees. */
export function errorFromReply(value: unknown, workerId: number): Error {
  const [kind, type, module, message, detail] = value as [string, string, string, string, string];
  if (kind === 'conversion') {
    // The message names the type already when the type is what has no counterpart: say it once.
    const named = !type || message.includes(`'${type}'`);
    // An object that is not a value (a model, a connection, an instance of a class): it can stay in the worker.
    const hint = message.includes('no JavaScript counterpart') ? HANDLE_HINT : '';
    return new ConversionError(`Cannot convert ${named ? '' : `Python type '${type}' `}to JavaScript: ${message}${hint}`, detail || undefined);
  }
  if (kind === 'protocol') return new ProtocolError(message);
  // (type, module, message, traceback) of each exception this one was raised from, outermost first: `cause`s
  const chain = ((value as unknown[])[5] ?? []) as Array<[string, string, string, string]>;
  let cause: PythonError | undefined;
  for (let i = chain.length - 1; i >= 0; i--) {
    const [t, m, msg, tb] = chain[i]!;
    cause = new PythonError({ type: t, module: m, message: msg, traceback: tb }, workerId, cause ? { cause } : undefined);
  }
  return new PythonError({ type, module, message, traceback: detail }, workerId, cause ? { cause } : undefined);
}
