// Value labels and codes of each attribute kind: the model's finite domain and the bins encoders use.
import type {
  AgeAttribute,
  ImageComponentAttribute,
  ImageFindingAttribute,
  LabAttribute,
  Schema,
  SchemaAttribute,
  SnpAttribute,
} from './types.ts';

function fmt(n: number): string {
  return String(n);
}

/** The value labels of one attribute, in code order (code i has label i). */
export function attributeLabels(attr: SchemaAttribute): string[] {
  switch (attr.kind) {
    case 'age':
      return attr.edges.map((lo, i) => (i + 1 < attr.edges.length ? `${lo}-${attr.edges[i + 1] - 1}` : `${lo}+`));
    case 'sex':
      return [...attr.values];
    case 'condition':
      return ['no', 'yes'];
    case 'lab': {
      const e = attr.edges;
      const labels = [`<${fmt(e[0])}`];
      for (let i = 0; i + 1 < e.length; i++) labels.push(`${fmt(e[i])}-<${fmt(e[i + 1])}`);
      labels.push(`>=${fmt(e[e.length - 1])}`);
      labels.push('missing');
      return labels;
    }
    case 'snp':
      return ['0', '1', '2', 'missing'];
    case 'image-finding':
      return [...attr.classes, 'no-image'];
    case 'image-component': {
      const e = attr.edges;
      const labels = [`<${fmt(e[0])}`];
      for (let i = 0; i + 1 < e.length; i++) labels.push(`${fmt(e[i])}-<${fmt(e[i + 1])}`);
      labels.push(`>=${fmt(e[e.length - 1])}`, 'no-image');
      return labels;
    }
    case 'note-mention':
      return ['absent', 'mentioned', 'no-note'];
  }
}

/** Code of "missing" (no call, or no genome) of a SNP attribute. */
export const SNP_MISSING = 3;
/** Code of "no image" of an image-finding attribute. */
export function imageMissingCode(attr: ImageFindingAttribute): number {
  return attr.classes.length;
}
/** Code of "no note" of a note-mention attribute. */
export const NOTE_MISSING = 2;

/** Code of "no image" of an image-component attribute. */
export function componentMissingCode(attr: ImageComponentAttribute): number {
  return attr.edges.length + 1;
}

/** Class of an image score: 0 below edges[0], i for [edges[i-1], edges[i]), edges.length at or above the last. */
export function imageClass(attr: ImageFindingAttribute, score: number): number {
  let k = 0;
  while (k < attr.edges.length && score >= attr.edges[k]) k++;
  return k;
}

/** The SNP panel of a schema (attributes of kind snp, in schema order). */
export function snpPanel(schema: Schema): SnpAttribute[] {
  return schema.attributes.filter((a): a is SnpAttribute => a.kind === 'snp');
}

/** The note vocabulary: every term of every note-mention attribute plus the negation cues. */
export function noteVocabulary(schema: Schema): string[] {
  const out = new Set<string>();
  for (const a of schema.attributes) if (a.kind === 'note-mention') for (const t of a.terms) out.add(t);
  for (const t of schema.notes?.negations ?? []) out.add(t);
  return [...out];
}

/** The model's domain: one entry per attribute, in schema order. */
export function schemaAttributes(schema: Schema): Array<{ name: string; size: number; labels: string[] }> {
  return schema.attributes.map((a) => {
    const labels = attributeLabels(a);
    return { name: a.name, size: labels.length, labels };
  });
}

/** Code of the "missing" bin of a lab attribute (always its last value). */
export function labMissingCode(attr: LabAttribute): number {
  return attr.edges.length + 1;
}

/** Bin of a lab value: 0 below edges[0], i for [edges[i-1], edges[i]), edges.length at or above the last edge. */
export function labBin(attr: LabAttribute, value: number): number {
  const e = attr.edges;
  let lo = 0;
  let hi = e.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value >= e[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Bin of an age in whole years (ages below 0 are the caller's problem). */
export function ageBin(attr: AgeAttribute, years: number): number {
  let bin = 0;
  for (let i = 0; i < attr.edges.length; i++) if (years >= attr.edges[i]) bin = i;
  return bin;
}
