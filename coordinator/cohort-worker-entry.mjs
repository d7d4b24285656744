// Entry of a cohort worker thread (coordinator/cohort-workers.ts): registers the TypeScript
// loader in this thread, then runs the worker. Plain JavaScript because nothing can load
// TypeScript before the loader is registered.
import { register } from 'tsx/esm/api';

register();
await import('./cohort-worker.ts');
