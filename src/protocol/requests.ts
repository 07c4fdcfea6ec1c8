/** Encoders of the data-channel requests (see python/_pyworkers/worker.py for the other side). */
import { Kind } from './frames.js';
import { encodeRequest, type EncodedRequest } from '../worker/worker.js';

export interface Request extends EncodedRequest {
  kind: number;
}

export function requestCall(ctx: number, module: string, fn: string, args: unknown[], kwargs: Record<string, unknown> | undefined): Request {
  return {
    kind: Kind.CALL,
    ...encodeRequest((enc) => {
      enc.tupleHeader(5);
      enc.number(ctx);
      enc.str(module);
      enc.str(fn);
      enc.value(args, 'args', true);
      enc.value(kwargs ?? null, 'kwargs', true);
    }),
  };
}

export function requestEval(ctx: number, code: string, locals: Record<string, unknown> | undefined): Request {
  return {
    kind: Kind.EVAL,
    ...encodeRequest((enc) => {
      enc.tupleHeader(3);
      enc.number(ctx);
      enc.str(code);
      enc.value(locals ?? null, 'locals', true);
    }),
  };
}

export function requestExec(ctx: number, code: string): Request {
  return {
    kind: Kind.EXEC,
    ...encodeRequest((enc) => {
      enc.tupleHeader(2);
      enc.number(ctx);
      enc.str(code);
    }),
  };
}

export function requestStreamCall(ctx: number, module: string, fn: string, args: unknown[], kwargs: Record<string, unknown> | undefined, credit: number): Request {
  return {
    kind: Kind.STREAM_CALL,
    ...encodeRequest((enc) => {
      enc.tupleHeader(6);
      enc.number(ctx);
      enc.str(module);
      enc.str(fn);
      enc.value(args, 'args', true);
      enc.value(kwargs ?? null, 'kwargs', true);
      enc.number(credit);
    }),
  };
}

export function requestStreamEval(ctx: number, code: string, locals: Record<string, unknown> | undefined, credit: number): Request {
  return {
    kind: Kind.STREAM_EVAL,
    ...encodeRequest((enc) => {
      enc.tupleHeader(4);
      enc.number(ctx);
      enc.str(code);
      enc.value(locals ?? null, 'locals', true);
      enc.number(credit);
    }),
  };
}

export function requestContextClose(ctx: number): Request {
  return { kind: Kind.CONTEXT_CLOSE, ...encodeRequest((enc) => enc.number(ctx)) };
}
