/**
 * Handles on the wire: `(Ellipsis, 'R', token, number, type name)` from the worker (python/_pyworkers/refs.py),
 * `(Ellipsis, 'R', token, number)` back to it. The codec knows a handle only by these keys, not by its class.
 */

/** The key under which a handle object (PyRef) gives its wire identity. */
export const HANDLE: unique symbol = Symbol('pyworkers.handle');

export interface WireHandle {
  readonly [HANDLE]: { readonly token: number; readonly id: number };
}

/** Makes the handle object for a handle tag in a reply (given by whoever decodes a worker's replies). */
export type HandleFactory = (token: number, id: number, typeName: string) => unknown;

export function isHandle(v: object): v is WireHandle {
  return HANDLE in v;
}
