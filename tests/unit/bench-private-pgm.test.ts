// bench/private-pgm.ts: the exported tables read back as the same data (score 0 against
// themselves), a changed row scores above 0, malformed synthetic output is refused, and without
// PRIVATE_PGM the bench has nothing to run and says how to get private-pgm.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOW_TO_GET, exportTable, loadTable, pgmCheckout, scoreSynthetic } from '../../bench/private-pgm.ts';

const dir = mkdtempSync(join(tmpdir(), 'pgm-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('private-pgm bench', () => {
  const t = loadTable('wide-small');
  const files = exportTable(t, dir);

  it('exports the table in private-pgm format and scores it back exactly', () => {
    expect(JSON.parse(readFileSync(files.domain, 'utf8'))).toEqual(
      Object.fromEntries(t.data.domain.attrs.map((a, i) => [a, t.data.domain.sizes[i]])),
    );
    expect(scoreSynthetic(t, files.csv)).toEqual({ l1TwoWay: 0, l1ThreeWay: 0, rows: t.data.rows });
    const lines = readFileSync(files.csv, 'utf8').trimEnd().split('\n');
    const changed = join(dir, 'changed.csv');
    writeFileSync(changed, [...lines, lines[1].replace(/^\d+/, '89')].join('\n'));
    const s = scoreSynthetic(t, changed);
    expect(s.rows).toBe(t.data.rows + 1);
    expect(s.l1TwoWay).toBeGreaterThan(0);
    expect(s.l1ThreeWay).toBeGreaterThan(0);
  });

  it('refuses synthetic rows outside the domain, naming the column', () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, `${t.data.domain.attrs.join(',')}\n90${',0'.repeat(t.data.domain.length - 1)}\n`);
    expect(() => scoreSynthetic(t, bad)).toThrow(/code/);
  });

  it('without PRIVATE_PGM: nothing to run, and the way to get it', () => {
    const saved = process.env.PRIVATE_PGM;
    delete process.env.PRIVATE_PGM;
    try {
      expect(pgmCheckout()).toBeUndefined();
    } finally {
      if (saved !== undefined) process.env.PRIVATE_PGM = saved;
    }
    expect(HOW_TO_GET).toMatch(/github\.com\/ryan112358\/private-pgm at commit 514dea358e91432ea5d5e41b16acb601d8266d99/);
    process.env.PRIVATE_PGM = dir;
    try {
      expect(() => pgmCheckout()).toThrow(/has no mechanisms\/aim\.py/);
    } finally {
      if (saved === undefined) delete process.env.PRIVATE_PGM;
      else process.env.PRIVATE_PGM = saved;
    }
  });
});
