// The worker thread of simulator/file-sink.ts: writes each file it is sent, in order, creating
// its folder, and answers a flush with the first error since the previous flush. Plain
// JavaScript: it needs nothing but node:fs, so no TypeScript loader is registered here.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';

const made = new Set();
let error;
parentPort.on('message', (m) => {
  if (m.t === 'write') {
    if (error !== undefined) return;
    try {
      const dir = dirname(m.path);
      if (!made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      writeFileSync(m.path, m.data);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
  } else if (m.t === 'flush') {
    parentPort.postMessage({ t: 'flushed', id: m.id, error });
    error = undefined;
  }
});
