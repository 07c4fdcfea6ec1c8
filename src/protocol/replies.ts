/**
 * Replies from the worker: OK, ITEMS* and ERROR payloads, decoded. An ERROR's payload is the tuple
 * (kind, type, module, message, detail) that python/_pyworkers/replies.py builds.
 */
import { ConversionError, ProtocolError, PythonError } from '../errors.js';
import { decode } from './decode.js';
import { FLAG_TAGGED } from './frames.js';

/** Decode a reply's payload; `wrapper`: a batch of stream items, whose own level does not count. */
export function decodePayload(flags: number, buf: Buffer, start: number, end: number, wrapper = false, parts?: Uint8Array[]): unknown {
  return decode(buf, start, end, (flags & FLAG_TAGGED) !== 0, wrapper, parts);
}

/** Turn an ERROR frame's payload into the error the caller sees. */
export function errorFromReply(value: unknown, workerId: number): Error {
  const [kind, type, module, message, detail] = value as [string, string, string, string, string];
  if (kind === 'conversion') {
    return new ConversionError(`Cannot convert ${type ? `Python type '${type}' ` : ''}to JavaScript: ${message}`, detail || undefined);
  }
  if (kind === 'protocol') return new ProtocolError(message);
  return new PythonError({ type, module, message, traceback: detail }, workerId);
}
