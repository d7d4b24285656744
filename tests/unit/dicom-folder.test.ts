import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDicomFolder, type DicomImage, type DicomScanStats } from '../../site-agent/connectors/dicom/index.ts';
import { writeDicomFixture } from '../../site-agent/connectors/dicom/write.ts';
import { Quarantine } from '../../site-agent/connectors/types.ts';

const attrs = (id: string) => ({
  PatientID: id,
  PatientName: 'Secret^Name',
  SOPInstanceUID: `1.2.3.${id.length}`,
  Modality: 'CR',
  SamplesPerPixel: 1,
  PhotometricInterpretation: 'MONOCHROME2',
  Rows: 2,
  Columns: 2,
  BitsAllocated: 8,
  BitsStored: 8,
  HighBit: 7,
  PixelRepresentation: 0,
});

describe('readDicomFolder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedsynth-dicom-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('walks a tree, yields good images and quarantines each bad file without stopping', async () => {
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    const good = writeDicomFixture({ transferSyntaxUid: '1.2.840.10008.1.2.1', attributes: attrs('P1'), pixelValues: [1, 2, 3, 4] });
    writeFileSync(join(dir, 'a', 'one.dcm'), good);
    writeFileSync(
      join(dir, 'a', 'b', 'IMG0002'),
      writeDicomFixture({
        transferSyntaxUid: '1.2.840.10008.1.2.5',
        attributes: attrs('P22'),
        pixelValues: [5, 6, 7, 8],
      }),
    );
    writeFileSync(join(dir, 'a', 'truncated.dcm'), good.subarray(0, good.length - 3));
    writeFileSync(
      join(dir, 'a', 'b', 'jpeg.dcm'),
      writeDicomFixture({
        transferSyntaxUid: '1.2.840.10008.1.2.4.50',
        attributes: attrs('P3'),
        fragments: [Uint8Array.from([0xff, 0xd8, 1, 2, 3, 4, 5, 6])],
      }),
    );
    writeFileSync(join(dir, 'garbage.bin'), 'not dicom');
    writeFileSync(join(dir, 'README.txt'), 'skipped silently');
    writeFileSync(
      join(dir, 'z-last.dcm'),
      writeDicomFixture({
        transferSyntaxUid: '1.2.840.10008.1.2',
        attributes: attrs('P4444'),
        pixelValues: [9, 9, 9, 9],
      }),
    );

    const q = new Quarantine();
    const stats: DicomScanStats = { filesSeen: 0, images: 0, quarantined: 0, skipped: 0 };
    const images: DicomImage[] = [];
    for await (const img of readDicomFolder(dir, q, {}, stats)) images.push(img);

    expect(images.map((i) => i.patientId).sort()).toEqual(['P1', 'P22', 'P4444']);
    expect(stats).toEqual({ filesSeen: 7, images: 3, quarantined: 3, skipped: 1 });
    const reasons = q.records.map((r) => `${r.source.slice(dir.length + 1)}: ${r.reason}`).sort();
    expect(reasons).toEqual([
      'a/b/jpeg.dcm: corrupt compressed pixel data',
      'a/truncated.dcm: truncated file',
      'garbage.bin: not a DICOM file',
    ]);
    expect(q.countsByReason()['dicom: truncated file']).toBe(1);
    expect(JSON.stringify(images.map(({ pixels: _p, ...m }) => m))).not.toContain('Secret');
  });

  it('a missing folder is a quarantine record, not a crash', async () => {
    const q = new Quarantine();
    const out: DicomImage[] = [];
    for await (const img of readDicomFolder(join(dir, 'does-not-exist'), q)) out.push(img);
    expect(out).toEqual([]);
    expect(q.records[0]?.reason).toBe('unreadable folder');
  });
});
