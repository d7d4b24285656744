import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { CHEST_PA_FROM_AGE_YEARS, frontalChestView } from '../../modalities/clinical/index.ts';
import { SITE_PROFILES } from '../../simulator/latent.ts';
import { radiographDicom } from '../../simulator/radiograph.ts';

describe('frontal chest projection by age', () => {
  it('is AP for infants and young children and PA from 4 years', () => {
    expect(CHEST_PA_FROM_AGE_YEARS).toBe(4);
    expect(frontalChestView(0)).toBe('AP');
    expect(frontalChestView(0.04)).toBe('AP');
    expect(frontalChestView(3.99)).toBe('AP');
    expect(frontalChestView(4)).toBe('PA');
    expect(frontalChestView(80)).toBe('PA');
  });

  it('refuses an age that is not a non-negative number', () => {
    expect(() => frontalChestView(-1)).toThrow(/age -1 is not a non-negative number/);
    expect(() => frontalChestView(Number.NaN)).toThrow(/age NaN/);
  });

  it("the simulated sites' radiographs carry the projection of the patient's age", () => {
    const scanner = SITE_PROFILES[0].scanner;
    const header = (birthDate: string, studyDate: string) => {
      const bytes = radiographDicom(new Uint16Array(16 * 16), 16, 170, scanner, {
        patientId: 'p',
        patientName: 'Test^Infant',
        birthDate,
        sex: 'male',
        studyDate,
        studyInstanceUid: '2.25.1',
        seriesInstanceUid: '2.25.2',
        sopInstanceUid: '2.25.3',
        accessionNumber: 'A1',
        institution: 'Test',
        seriesNumber: 1,
        instanceNumber: 1,
      });
      const ds = dicomParser.parseDicom(bytes);
      return [ds.string('x00185101'), ds.string('x0008103e'), ds.string('x00081030')];
    };
    expect(header('2024-12-08', '2024-12-23')).toEqual(['AP', 'AP', 'XR CHEST AP']);
    expect(header('2010-01-01', '2024-12-23')).toEqual(['PA', 'PA', 'XR CHEST PA']);
  });
});
