import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSink } from '../../simulator/file-sink.ts';

describe('simulator file sink (files written by a worker thread)', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes text and bytes (a view into a larger buffer) with their folders, all on disk after flush', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedsynth-sink-'));
    const sink = new FileSink();
    try {
      const big = Uint8Array.from({ length: 100 }, (_, i) => i);
      for (let i = 0; i < 200; i++) sink.write(join(dir, `p${i % 7}`, `n${i}.txt`), `note ${i}\n`);
      sink.write(join(dir, 'img', 'cut.dcm'), big.subarray(10, 20));
      await sink.flush();
      expect(await readFile(join(dir, 'p3', 'n199.txt'), 'utf8')).toBe('note 199\n');
      expect([...(await readFile(join(dir, 'img', 'cut.dcm')))]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    } finally {
      await sink.close();
    }
  });

  it('rejects the flush after a write that failed, naming the cause', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedsynth-sink-'));
    await writeFile(join(dir, 'a-file'), 'x');
    const sink = new FileSink();
    try {
      sink.write(join(dir, 'a-file', 'below-a-file.txt'), 'cannot be written');
      await expect(sink.flush()).rejects.toThrow(/writing a file failed: .*(ENOTDIR|EEXIST)/);
    } finally {
      await sink.close();
    }
  });
});
