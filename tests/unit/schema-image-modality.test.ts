import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSchema } from '../../schema/schema.ts';

const text = readFileSync(new URL('../../schema/hospital-multimodal-v1.yaml', import.meta.url), 'utf8');
const withModalities = (list: string) => text.replace(/modalities: \[[^\]]*\]/, `modalities: [${list}]`);

describe('schema image modalities are DICOM Modality codes (CS, up to 16 characters)', () => {
  it('accepts codes longer than four letters (RTDOSE, RTSTRUCT)', () => {
    expect(parseSchema(withModalities('DX, CR, RTDOSE, RTSTRUCT')).image!.modalities).toEqual(['DX', 'CR', 'RTDOSE', 'RTSTRUCT']);
  });
  it('still refuses what no Modality can be', () => {
    for (const bad of ['dx', 'D', 'A_VERY_LONG_MODALITY', '1DX', '"D X"'])
      expect(() => parseSchema(withModalities(bad)), bad).toThrow(/Modality/);
  });
});
