/**
 * Where the simulator's many small files go. A site of 5,000 patients writes ≈ 10,000 of them
 * (notes and DICOMs), and a synchronous create-and-write of each took ≈ 11 of the demo's 28 CPU
 * seconds of simulation; a `FileSink` hands them to a worker thread that writes them while the
 * simulator goes on drawing patients (on another core where there is one). The bytes and paths
 * are the same; `flush()` returns once every file handed over so far is on disk, or rejects with
 * the first write error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';

/** Writes one file, creating its folder; the file may not exist before `flush()` resolves. */
export interface FileWriter {
  write(path: string, data: string | Uint8Array): void;
}

/** Writes each file at once, in the caller's thread. */
export const syncFileWriter: FileWriter = {
  write(path, data) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
  },
};

type SinkReply = { t: 'flushed'; id: number; error?: string };

/** Files written by a worker thread; `close()` ends it (after `flush()` if the files matter). */
export class FileSink implements FileWriter {
  private readonly worker = new Worker(new URL('./file-sink-worker.mjs', import.meta.url));
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failed: Error | undefined;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (m: SinkReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) this.worker.unref();
      if (m.error) w.reject(new Error(`simulate: writing a file failed: ${m.error}`));
      else w.resolve();
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`the file writer thread exited with code ${code}`)));
  }

  write(path: string, data: string | Uint8Array): void {
    if (this.failed) throw this.failed;
    this.worker.postMessage({ t: 'write', path, data });
  }

  /** Resolves when every file written so far is on disk; rejects with the first failure since the last flush. */
  flush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ t: 'flush', id });
    });
  }

  async close(): Promise<void> {
    this.failed ??= new Error('file sink closed');
    await this.worker.terminate();
  }
}
