/**
 * Finite attribute domains and integer-coded datasets.
 *
 * A Domain is an ordered list of attributes, each with a finite number of values coded 0..size-1.
 * Every multi-attribute table in the model layer (marginals, measurements, potentials) is a flat
 * row-major array over an ordered attribute list: the LAST attribute varies fastest, i.e. cell
 * (v0, v1, ..., vk) sits at ((v0 * s1 + v1) * s2 + v2) ... . `indexMap` converts between layouts.
 *
 * Pure: no I/O. Callers read files and hand the text to `parseDomainJson` / `parseCsvDataset`.
 */

export class Domain {
  readonly attrs: readonly string[];
  readonly sizes: readonly number[];
  private readonly position: ReadonlyMap<string, number>;

  constructor(attrs: readonly string[], sizes: readonly number[]) {
    if (attrs.length !== sizes.length) throw new Error(`Domain: ${attrs.length} attributes but ${sizes.length} sizes`);
    const position = new Map<string, number>();
    attrs.forEach((a, i) => {
      if (position.has(a)) throw new Error(`Domain: duplicate attribute "${a}"`);
      const s = sizes[i];
      if (!Number.isInteger(s) || s < 1) throw new Error(`Domain: attribute "${a}" has invalid size ${s}`);
      position.set(a, i);
    });
    this.attrs = [...attrs];
    this.sizes = [...sizes];
    this.position = position;
  }

  /** Builds a domain from a private-pgm style object `{"attr": size, ...}` (key order = attribute order). */
  static fromRecord(record: Readonly<Record<string, number>>): Domain {
    return new Domain(Object.keys(record), Object.values(record));
  }

  toRecord(): Record<string, number> {
    const out: Record<string, number> = {};
    this.attrs.forEach((a, i) => (out[a] = this.sizes[i]));
    return out;
  }

  get length(): number {
    return this.attrs.length;
  }

  has(attr: string): boolean {
    return this.position.has(attr);
  }

  /** Position of an attribute in the domain order; throws on unknown names (typos must not pass silently). */
  indexOf(attr: string): number {
    const i = this.position.get(attr);
    if (i === undefined) throw new Error(`Domain: unknown attribute "${attr}"`);
    return i;
  }

  sizeOf(attr: string): number {
    return this.sizes[this.indexOf(attr)];
  }

  /** Number of cells of the table over `attrs` (product of sizes; 1 for the empty set). */
  cells(attrs: readonly string[]): number {
    let n = 1;
    for (const a of attrs) n *= this.sizeOf(a);
    return n;
  }

  /** Sub-domain over `attrs`, in the order given. */
  project(attrs: readonly string[]): Domain {
    return new Domain(
      attrs,
      attrs.map((a) => this.sizeOf(a)),
    );
  }

  /** `attrs` sorted into domain order, duplicates removed: the canonical form of an attribute set. */
  canonical(attrs: Iterable<string>): string[] {
    return [...new Set(attrs)].sort((a, b) => this.indexOf(a) - this.indexOf(b));
  }

  /** Row-major strides of the table over `attrs` (last attribute has stride 1). */
  strides(attrs: readonly string[]): number[] {
    const out = new Array<number>(attrs.length);
    let s = 1;
    for (let i = attrs.length - 1; i >= 0; i--) {
      out[i] = s;
      s *= this.sizeOf(attrs[i]);
    }
    return out;
  }

  /**
   * For every cell of the table over `from` (row-major), the flat index of the corresponding cell
   * of the table over `to`, where `to` is a subset of `from` in ANY order. Used for projection
   * (sum cells with the same target index), broadcasting (read the target index) and reordering
   * (when `to` is a permutation of `from`).
   */
  indexMap(from: readonly string[], to: readonly string[]): Int32Array {
    const fromSet = new Set(from);
    for (const a of to) if (!fromSet.has(a)) throw new Error(`indexMap: "${a}" is not in [${from.join(', ')}]`);
    const n = this.cells(from);
    if (n > 0x7fffffff) throw new Error(`indexMap: table over [${from.join(', ')}] has ${n} cells, too many to index`);
    const toStride = new Map<string, number>();
    const ts = this.strides(to);
    to.forEach((a, i) => toStride.set(a, ts[i]));
    const k = from.length;
    const size = from.map((a) => this.sizeOf(a));
    const step = from.map((a) => toStride.get(a) ?? 0);
    const digit = new Int32Array(k);
    const map = new Int32Array(n);
    let cur = 0;
    for (let i = 0; i < n; i++) {
      map[i] = cur;
      // Odometer increment, last attribute fastest.
      for (let d = k - 1; d >= 0; d--) {
        digit[d]++;
        cur += step[d];
        if (digit[d] < size[d]) break;
        cur -= step[d] * size[d];
        digit[d] = 0;
      }
    }
    return map;
  }
}

/** One column of integer codes; the narrowest type that holds the attribute's size. */
export type Column = Uint8Array | Uint16Array | Int32Array;

export function allocColumn(size: number, rows: number): Column {
  if (size <= 0x100) return new Uint8Array(rows);
  if (size <= 0x10000) return new Uint16Array(rows);
  return new Int32Array(rows);
}

/** Column-major integer-coded records over a domain; columns are in domain order. */
export class Dataset {
  readonly domain: Domain;
  readonly columns: readonly Column[];
  readonly rows: number;

  constructor(domain: Domain, columns: readonly Column[], rows: number) {
    if (columns.length !== domain.length) throw new Error(`Dataset: ${columns.length} columns for ${domain.length} attributes`);
    columns.forEach((c, i) => {
      if (c.length !== rows) throw new Error(`Dataset: column "${domain.attrs[i]}" has ${c.length} rows, expected ${rows}`);
    });
    this.domain = domain;
    this.columns = columns;
    this.rows = rows;
  }

  column(attr: string): Column {
    return this.columns[this.domain.indexOf(attr)];
  }

  /** Checks every code is in 0..size-1 (data from outside the model layer must pass this once). */
  validate(): void {
    this.columns.forEach((col, j) => {
      const size = this.domain.sizes[j];
      for (let r = 0; r < col.length; r++) {
        const v = col[r];
        if (v < 0 || v >= size)
          throw new Error(`Dataset: row ${r} attribute "${this.domain.attrs[j]}" has value ${v} outside 0..${size - 1}`);
      }
    });
  }
}

/** Parses a private-pgm domain file: a JSON object `{"attr": size, ...}`. */
export function parseDomainJson(text: string): Domain {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new Error(`domain JSON: ${(e as Error).message}`, { cause: e });
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('domain JSON: expected an object {"attr": size}');
  return Domain.fromRecord(obj as Record<string, number>);
}

/**
 * Parses a CSV of integer-coded columns (header row of attribute names, comma separated, no quoting).
 * Header columns may come in any order but must be exactly the domain's attributes; every value must
 * be an integer in 0..size-1. Errors name the line and the column.
 */
export function parseCsvDataset(text: string, domain: Domain): Dataset {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new Error('CSV: empty input');
  const header = lines[0].split(',').map((h) => h.trim());
  const headerSet = new Set(header);
  if (headerSet.size !== header.length) throw new Error('CSV: duplicate column names in header');
  for (const a of domain.attrs) if (!headerSet.has(a)) throw new Error(`CSV: missing column "${a}"`);
  for (const h of header) if (!domain.has(h)) throw new Error(`CSV: column "${h}" is not in the domain`);
  const rows = lines.length - 1;
  const target = header.map((h) => domain.indexOf(h));
  const columns = domain.sizes.map((s) => allocColumn(s, rows));
  for (let r = 0; r < rows; r++) {
    const fields = lines[r + 1].split(',');
    if (fields.length !== header.length) throw new Error(`CSV line ${r + 2}: ${fields.length} fields, expected ${header.length}`);
    for (let j = 0; j < header.length; j++) {
      const field = fields[j].trim();
      const v = Number(field);
      const a = target[j];
      if (field === '' || !Number.isInteger(v) || v < 0 || v >= domain.sizes[a]) {
        throw new Error(`CSV line ${r + 2}, column "${header[j]}": value "${field}" is not an integer in 0..${domain.sizes[a] - 1}`);
      }
      columns[a][r] = v;
    }
  }
  return new Dataset(domain, columns, rows);
}
