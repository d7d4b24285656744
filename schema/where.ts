// Cohort filters ("age>=40,age<80,condition=pneumonia") → the allowed values of each attribute,
// in terms of the public schema's bins. Pure: conditioning the model on these is post-processing.
import { attributeLabels, type Schema, type SchemaAttribute } from './schema.ts';

export class WhereError extends Error {}

type Allowed = Record<string, number[]>;

const CLAUSE = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|<|>)\s*(.+?)\s*$/;

function intersect(into: Allowed, attr: string, values: number[]): void {
  const prev = into[attr];
  into[attr] = prev ? prev.filter((v) => values.includes(v)) : values;
}

function ageBins(attr: Extract<SchemaAttribute, { kind: 'age' }>, op: string, years: number): number[] {
  const out: number[] = [];
  attr.edges.forEach((lo, i) => {
    const hi = i + 1 < attr.edges.length ? attr.edges[i + 1] : attr.max; // exclusive
    // A bin qualifies only if every age in it satisfies the comparison: filters never widen.
    const ok =
      op === '>='
        ? lo >= years
        : op === '>'
          ? lo > years
          : op === '<'
            ? hi <= years
            : op === '<='
              ? hi - 1 <= years
              : op === '='
                ? lo <= years && years < hi
                : !(lo <= years && years < hi);
    if (ok) out.push(i);
  });
  return out;
}

/** Parses a comma-separated filter. Unknown attributes, labels or operators are errors. */
export function parseWhere(schema: Schema, text: string): Allowed {
  const allowed: Allowed = {};
  if (text.trim() === '') return allowed;
  const byName = new Map(schema.attributes.map((a) => [a.name, a]));
  for (const raw of text.split(',')) {
    const m = CLAUSE.exec(raw);
    if (!m) throw new WhereError(`cannot read filter clause ${JSON.stringify(raw.trim())}: expected attribute<op>value, e.g. age>=40`);
    const [, name, op, value] = m;
    if (name === 'condition') {
      if (op !== '=' && op !== '!=') throw new WhereError(`condition takes = or !=, got ${op}`);
      const attr = byName.get(value);
      if (!attr || attr.kind !== 'condition') {
        const known = schema.attributes.filter((a) => a.kind === 'condition').map((a) => a.name);
        throw new WhereError(`unknown condition ${JSON.stringify(value)} (known: ${known.join(', ')})`);
      }
      intersect(allowed, value, [op === '=' ? 1 : 0]);
      continue;
    }
    const attr = byName.get(name);
    if (!attr) throw new WhereError(`unknown attribute ${JSON.stringify(name)} (known: condition, ${[...byName.keys()].join(', ')})`);
    if (attr.kind === 'age' && op !== '!=' && /^\d+(\.\d+)?$/.test(value)) {
      intersect(allowed, name, ageBins(attr, op, Number(value)));
      continue;
    }
    if (op !== '=' && op !== '!=') throw new WhereError(`${name} takes = or != with one of its labels, got ${op}`);
    const labels = attributeLabels(attr);
    const index = labels.indexOf(value);
    if (index < 0) throw new WhereError(`${name} has no value ${JSON.stringify(value)} (values: ${labels.join(', ')})`);
    intersect(allowed, name, op === '=' ? [index] : labels.map((_, i) => i).filter((i) => i !== index));
  }
  for (const [name, values] of Object.entries(allowed)) {
    if (values.length === 0) throw new WhereError(`the filter on ${name} allows no value: the cohort would be empty`);
  }
  return allowed;
}
