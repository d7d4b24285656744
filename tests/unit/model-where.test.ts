import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseSchema } from '../../schema/schema.ts';
import { parseWhere, WhereError } from '../../schema/where.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const schema = parseSchema(readFileSync(DEFAULT_SCHEMA_PATH, 'utf8'));
// age edges: 0, 5, 12, 18, 30, 40, 50, 60, 65, 70, 80 (80+ open, max 100)

describe('cohort filters', () => {
  it('maps age ranges to the bins entirely inside them', () => {
    expect(parseWhere(schema, 'age>=40,age<80')).toEqual({ age: [5, 6, 7, 8, 9] });
    expect(parseWhere(schema, 'age>=45')).toEqual({ age: [6, 7, 8, 9, 10] });
    expect(parseWhere(schema, 'age<=17')).toEqual({ age: [0, 1, 2] });
    expect(parseWhere(schema, 'age=33')).toEqual({ age: [4] });
  });

  it('maps conditions and labels', () => {
    expect(parseWhere(schema, 'condition=pneumonia')).toEqual({ pneumonia: [1] });
    expect(parseWhere(schema, 'condition!=asthma, sex=female')).toEqual({ asthma: [0], sex: [0] });
    expect(parseWhere(schema, 'hba1c=missing').hba1c).toHaveLength(1);
    expect(parseWhere(schema, '')).toEqual({});
  });

  it('rejects what it cannot read, naming the problem', () => {
    expect(() => parseWhere(schema, 'age>>4')).toThrow(WhereError);
    expect(() => parseWhere(schema, 'height>3')).toThrow(/unknown attribute "height"/);
    expect(() => parseWhere(schema, 'condition=gout')).toThrow(/unknown condition "gout"/);
    expect(() => parseWhere(schema, 'sex=robot')).toThrow(/no value "robot"/);
    expect(() => parseWhere(schema, 'sex>female')).toThrow(/takes = or !=/);
    expect(() => parseWhere(schema, 'age>=60,age<40')).toThrow(/allows no value/);
    expect(() => parseWhere(schema, 'nonsense')).toThrow(/cannot read filter clause/);
  });
});
