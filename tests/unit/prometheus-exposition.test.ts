import { describe, expect, it } from 'vitest';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parseExposition } from '../support/prometheus.js';

describe('the test suite reader of the Prometheus exposition format', () => {
  it('reads NaN in any case (as Prometheus does), infinities and labels', () => {
    const e = parseExposition('# TYPE a gauge\na Nan\nb{x="1",y="q\\"r"} +Inf\nc NaN 1700000000\nd -2.5e-3\n');
    expect(e.types).toEqual({ a: 'gauge' });
    expect(Number.isNaN(e.samples[0].value)).toBe(true);
    expect(e.samples[1]).toEqual({ name: 'b', labels: { x: '1', y: 'q"r' }, value: Infinity });
    expect(Number.isNaN(e.samples[2].value)).toBe(true);
    expect(e.samples[3].value).toBe(-0.0025);
  });

  it('refuses a value that is not a number, a line that is not a sample, and an unknown type', () => {
    expect(() => parseExposition('a 1.2.3\n')).toThrow(/line 1: value 1.2.3 is not a number/);
    expect(() => parseExposition('a\n')).toThrow(/line 1 is not a sample/);
    expect(() => parseExposition('# TYPE a gaugeish\n')).toThrow(/bad type gaugeish/);
  });

  it("reads everything prom-client's default metrics write right after start", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'probe_' });
    const e = parseExposition(await registry.metrics());
    expect(e.samples.some((s) => s.name === 'probe_process_resident_memory_bytes' && s.value > 0)).toBe(true);
    registry.clear();
  });
});
