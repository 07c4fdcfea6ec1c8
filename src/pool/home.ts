/**
 * Where a request with handles among its values must run: on the worker that holds their objects. The state
 * behind each handle (its worker, whether it was disposed) is a HandleState, kept under the handle's HANDLE key.
 */
import { RefDisposedError, RefLostError, RefWorkerError } from '../errors.js';
import { HANDLE, type WireHandle } from '../protocol/handles.js';
import type { PythonWorker } from '../worker/worker.js';

/** What a PyRef is, without the class: its wire identity and where its object lives. */
export interface HandleState {
  readonly token: number;
  readonly id: number;
  readonly worker: PythonWorker;
  readonly typeName: string;
  disposed: boolean;
}

/** Throws when the handle's object is gone (disposed, or its worker exited). */
export function checkHandle(state: HandleState): void {
  if (state.disposed) throw new RefDisposedError(state.typeName);
  if (state.worker.state === 'exited') throw refLost(state);
}

export function refLost(state: HandleState): RefLostError {
  const why = state.worker.killReason ? ` (${state.worker.killReason})` : '';
  return new RefLostError(`The worker that held this handle's object (a Python '${state.typeName}', worker ${state.worker.id}) has exited${why}; the object is gone`);
}

/** The one worker that holds the objects of `handles`; throws when they are gone or live on several workers. */
export function homeWorker(handles: readonly WireHandle[]): PythonWorker {
  let home: PythonWorker | undefined;
  for (const handle of handles) {
    const state = handle[HANDLE] as HandleState;
    checkHandle(state);
    if (home && home !== state.worker) {
      throw new RefWorkerError(`The handles of one call live on different workers (${home.id} and ${state.worker.id}): a handle works only on its own worker`);
    }
    home = state.worker;
  }
  return home!;
}
