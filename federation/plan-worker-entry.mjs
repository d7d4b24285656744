// Entry of the plan worker thread (federation/plan-worker.ts): registers the TypeScript loader
// in this thread, then runs the worker. Plain JavaScript because nothing can load TypeScript
// before the loader is registered.
import { register } from 'tsx/esm/api';

register();
await import('./plan-worker-thread.ts');
