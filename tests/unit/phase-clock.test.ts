import { describe, expect, it } from 'vitest';
import { formatPhaseTable, PhaseClock } from '../../ops/phase-clock.ts';

describe('PhaseClock', () => {
  it('sums re-entered phases, keeps first-entry order, and counts entries', async () => {
    const clock = new PhaseClock();
    clock.start('a');
    clock.start('a'); // already running: not a new entry
    clock.start('b');
    await new Promise((r) => setTimeout(r, 20));
    clock.start('a');
    clock.end();
    clock.add('c', 1.5, 0.5, 3);
    const phases = clock.phases();
    expect(phases.map((p) => [p.phase, p.count])).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 3],
    ]);
    expect(phases[1].wallSeconds).toBeGreaterThanOrEqual(0.01);
    expect(phases[2]).toMatchObject({ wallSeconds: 1.5, cpuSeconds: 0.5 });
  });

  it('times a phase however its function ends', async () => {
    const clock = new PhaseClock();
    await expect(clock.time('fails', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(clock.phases().map((p) => p.phase)).toEqual(['fails']);
    clock.start('next');
    clock.end();
    expect(clock.phases().map((p) => p.phase)).toEqual(['fails', 'next']);
  });

  it('formats a table with each phase’s share of the total wall time', () => {
    const lines = formatPhaseTable(
      [
        { phase: 'simulate', wallSeconds: 30, cpuSeconds: 28.4, count: 1 },
        { phase: 'round', wallSeconds: 10, cpuSeconds: 2, count: 8 },
      ],
      40,
    );
    expect(lines[0]).toMatch(/^phase\s+wall s\s+share\s+cpu s$/);
    expect(lines[1]).toMatch(/^simulate\s+30\.0\s+75 %\s+28\.4$/);
    expect(lines[2]).toMatch(/^round ×8\s+10\.0\s+25 %\s+2\.0$/);
  });
});
