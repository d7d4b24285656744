import type { Schema } from '../../schema/schema.ts';

/**
 * Cohort conditions that give every patient an image, a genome and a note (every image-finding
 * class and component bin, both note-mention values, one SNP's dosages), so a bench times full
 * cross-modal patients only (bench/cohort-write.ts --full 1, bench/patient-parts.ts).
 */
export function fullCrossModal(schema: Schema): Record<string, number[]> {
  const where: Record<string, number[]> = {};
  let snp = false;
  for (const a of schema.attributes) {
    if (a.kind === 'image-finding') where[a.name] = a.classes.map((_, i) => i);
    if (a.kind === 'image-component') where[a.name] = Array.from({ length: a.edges.length + 1 }, (_, i) => i);
    if (a.kind === 'note-mention') where[a.name] = [0, 1];
    if (a.kind === 'snp' && !snp) {
      where[a.name] = [0, 1, 2];
      snp = true;
    }
  }
  return where;
}
