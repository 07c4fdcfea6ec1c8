/**
 * Every request the host sends, encoded: the frame (with room for its header) and the large buffers written after
 * it. The Python side reads them in python/_pyworkers/worker.py (data channel) and control.py (control channel);
 * ARCHITECTURE.md has the table of request tuples.
 */
import { ConversionError } from '../errors.js';
import { Encoder } from './encode.js';
import type { WireHandle } from './handles.js';
import { FLAG_PARTS, FLAG_TAGGED, HEADER_SIZE, Kind, MAX_FRAME, partsHead, PROTOCOL_VERSION } from './frames.js';

/** An encoded request: its kind, its frame (with room for the header) and the parts written after it, if any. */
export interface Request {
  kind: number;
  frame: Buffer;
  flags: number;
  parts?: Uint8Array[];
  /** The handles (PyRefs) among its values: it must run on their worker. */
  handles?: WireHandle[];
}

/**
 * The encoder, shared: encoding is synchronous, but a getter, `valueOf` or Proxy trap of an argument may start
 * another request while one is being encoded; that one gets an encoder of its own (see `encode`).
 */
const shared = new Encoder();
let sharedBusy = false;

/** Encode one request: `write` writes the message's one marshal value. */
function encode(kind: number, write: (enc: Encoder) => void): Request {
  const enc = sharedBusy ? new Encoder() : shared;
  const own = enc === shared;
  if (own) sharedBusy = true;
  try {
    enc.begin(HEADER_SIZE);
    write(enc);
    const message = enc.end();
    const flags = enc.tagged ? FLAG_TAGGED : 0;
    const parts = enc.parts;
    const handles = enc.handles;
    if (!parts) return handles ? { kind, frame: message, flags, handles } : { kind, frame: message, flags };
    const frame = partsHead(message, HEADER_SIZE, parts.buffers, parts.kinds);
    if (frame.length - 4 + partsSize(parts.buffers) > MAX_FRAME) {
      throw new ConversionError(`a message larger than ${MAX_FRAME / 2 ** 30} GiB cannot be sent to Python`);
    }
    return { kind, frame, flags: flags | FLAG_PARTS, parts: parts.buffers, ...(handles ? { handles } : {}) };
  } finally {
    if (own) sharedBusy = false;
  }
}

/** The bytes of a request's parts (what follows its frame). */
export function partsSize(parts: readonly Uint8Array[] | undefined): number {
  let n = 0;
  if (parts) for (const part of parts) n += part.byteLength;
  return n;
}

/** INIT: the worker's settings; answered with its ReadyInfo once `setup` ran. */
export function requestInit(config: Record<string, unknown>): Request {
  return encode(Kind.INIT, (enc) => enc.value({ ...config, protocol: PROTOCOL_VERSION }, 'init'));
}

/** CALL: (ctx, module, fn, args, kwargs); `module` a handle: a method of its object (ctx 0). */
export function requestCall(ctx: number, module: string | WireHandle, fn: string, args: unknown[], kwargs: Record<string, unknown> | undefined): Request {
  return encode(Kind.CALL, (enc) => {
    enc.tupleHeader(5);
    enc.number(ctx);
    if (typeof module === 'string') enc.str(module);
    else enc.value(module, 'handle');
    enc.str(fn);
    enc.value(args, 'args', true);
    enc.value(kwargs ?? null, 'kwargs', true);
  });
}

/** CALLBACK_REPLY (the id is the callback's): ['ok', value], ['error', [name, message, stack]] or ['unknown', names]. */
export function requestCallbackReply(reply: unknown[]): Request {
  return encode(Kind.CALLBACK_REPLY, (enc) => enc.value(reply, 'result', true));
}

/** EVAL: (ctx, code, locals). */
export function requestEval(ctx: number, code: string, locals: Record<string, unknown> | undefined): Request {
  return encode(Kind.EVAL, (enc) => {
    enc.tupleHeader(3);
    enc.number(ctx);
    enc.str(code);
    enc.value(locals ?? null, 'locals', true);
  });
}

/** EXEC: (ctx, code). */
export function requestExec(ctx: number, code: string): Request {
  return encode(Kind.EXEC, (enc) => {
    enc.tupleHeader(2);
    enc.number(ctx);
    enc.str(code);
  });
}

/** STREAM_CALL: (ctx, module, fn, args, kwargs, credit). */
export function requestStreamCall(ctx: number, module: string, fn: string, args: unknown[], kwargs: Record<string, unknown> | undefined, credit: number): Request {
  return encode(Kind.STREAM_CALL, (enc) => {
    enc.tupleHeader(6);
    enc.number(ctx);
    enc.str(module);
    enc.str(fn);
    enc.value(args, 'args', true);
    enc.value(kwargs ?? null, 'kwargs', true);
    enc.number(credit);
  });
}

/** STREAM_EVAL: (ctx, code, locals, credit). */
export function requestStreamEval(ctx: number, code: string, locals: Record<string, unknown> | undefined, credit: number): Request {
  return encode(Kind.STREAM_EVAL, (enc) => {
    enc.tupleHeader(4);
    enc.number(ctx);
    enc.str(code);
    enc.value(locals ?? null, 'locals', true);
    enc.number(credit);
  });
}

/** STREAM_MORE: credit (the stream is the request id's). */
export function requestStreamMore(credit: number): Request {
  return encode(Kind.STREAM_MORE, (enc) => enc.number(credit));
}

/** STREAM_CLOSE: the id of the stream's opening request. */
export function requestStreamClose(sid: number): Request {
  return encode(Kind.STREAM_CLOSE, (enc) => enc.number(sid));
}

/** CONTEXT_CLOSE: the context id. */
export function requestContextClose(ctx: number): Request {
  return encode(Kind.CONTEXT_CLOSE, (enc) => enc.number(ctx));
}

/** CONTROL (control channel): [operation name, args]. */
export function requestControl(op: string, args: unknown[]): Request {
  const request = encode(Kind.CONTROL, (enc) => enc.value([op, args], 'arguments'));
  if (request.parts) throw new ConversionError('control requests take no large buffers');
  return request;
}

/** CANCEL (control channel): the id of the request to interrupt is the frame's; the payload is None. */
export function requestCancel(): Request {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + 1);
  frame[HEADER_SIZE] = 0x4e; // marshal None
  return { kind: Kind.CANCEL, frame, flags: 0 };
}
