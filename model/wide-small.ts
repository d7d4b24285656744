/**
 * The wide/small benchmark table (issue 13): few records, many attributes, one attribute with
 * many values most of which are rare — the regime where private-pgm's MST gains from compressing
 * rare values. Deterministic from its seed (model/rng.ts), so every bench run scores the same
 * table. Not a privacy mechanism; only the data a benchmark fits.
 *
 * Shape: a latent class z (6 classes) drives every attribute; a 90-value "code" attribute has a
 * Zipf-like frequency whose head depends on z (a few common codes per class, a long rare tail);
 * the others (sizes 2–12) depend on z and, for some, on the previous attribute (a chain), so
 * both 2-way and 3-way structure exist.
 */
import { Dataset, Domain, allocColumn } from './domain.ts';
import { Rng } from './rng.ts';

export interface WideSmallOptions {
  /** Records; default 1,300. */
  rows?: number;
  /** Values of the large attribute; default 90. */
  codeValues?: number;
  seed?: number | string;
}

const CLASSES = 6;
/** Sizes of the other attributes (14 of them: 15 attributes with the code). */
const SMALL_SIZES = [2, 3, 4, 5, 2, 7, 3, 10, 4, 6, 2, 8, 12, 5];

export function wideSmallTable(options: WideSmallOptions = {}): Dataset {
  const rows = options.rows ?? 1300;
  const codeValues = options.codeValues ?? 90;
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`wideSmallTable: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(codeValues) || codeValues < 2)
    throw new Error(`wideSmallTable: codeValues must be an integer >= 2, got ${codeValues}`);
  const rng = new Rng(`wide-small/${options.seed ?? 1}`);
  const attrs = ['code', ...SMALL_SIZES.map((_, i) => `a${i + 1}`)];
  const domain = new Domain(attrs, [codeValues, ...SMALL_SIZES]);
  const classWeights = Array.from({ length: CLASSES }, () => 0.5 + rng.next());
  // Code frequency per class: a global Zipf tail, times a boost on a few class-specific codes.
  const codeWeights = Array.from({ length: CLASSES }, () => {
    const w = Array.from({ length: codeValues }, (_, v) => 1 / (v + 1) ** 1.1);
    for (let k = 0; k < 4; k++) w[rng.int(Math.min(codeValues, 30))] *= 10 + 20 * rng.next();
    return w;
  });
  // Per attribute: a conditional table given (z, previous attribute's value), peaked at random.
  const tables = SMALL_SIZES.map((size, j) => {
    const prev = j === 0 ? 1 : SMALL_SIZES[j - 1];
    return Array.from({ length: CLASSES * prev }, () => {
      const w = Array.from({ length: size }, () => rng.next() ** 3);
      w[rng.int(size)] += 3;
      return w;
    });
  });
  const chained = SMALL_SIZES.map((_, j) => j > 0 && j % 3 !== 0);
  const columns = domain.sizes.map((s) => allocColumn(s, rows));
  for (let r = 0; r < rows; r++) {
    const z = rng.weighted(classWeights);
    columns[0][r] = rng.weighted(codeWeights[z]);
    let prev = 0;
    for (let j = 0; j < SMALL_SIZES.length; j++) {
      const p = chained[j] ? prev : 0;
      const prevSize = j === 0 ? 1 : SMALL_SIZES[j - 1];
      const v = rng.weighted(tables[j][z * prevSize + p]);
      columns[j + 1][r] = v;
      prev = v;
    }
  }
  return new Dataset(domain, columns, rows);
}
