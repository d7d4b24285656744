// Wall and CPU seconds of a process's phases, for the timing summaries of long-running work (the
// demo, the coordinator's fit). CPU is this process's user + system time, worker threads
// included: on a shared machine it says what a phase costs where wall time says only how long it
// waited, so the two together tell work from waiting.

export interface PhaseTiming {
  phase: string;
  wallSeconds: number;
  cpuSeconds: number;
  /** How many times the phase was entered (rounds of the same kind are summed). */
  count: number;
}

function cpuSecondsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export class PhaseClock {
  private current: { phase: string; wall0: number; cpu0: number } | undefined;
  private readonly totals = new Map<string, PhaseTiming>();

  /** Ends the running phase (if any) and starts `phase`; re-entering a phase adds to its totals. */
  start(phase: string): void {
    if (this.current?.phase === phase) return;
    this.end();
    this.current = { phase, wall0: performance.now(), cpu0: cpuSecondsNow() };
  }

  /** Ends the running phase. */
  end(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    this.add(c.phase, (performance.now() - c.wall0) / 1000, cpuSecondsNow() - c.cpu0);
  }

  /** Adds a phase measured elsewhere (another process's report). */
  add(phase: string, wallSeconds: number, cpuSeconds: number, count = 1): void {
    const t = this.totals.get(phase) ?? { phase, wallSeconds: 0, cpuSeconds: 0, count: 0 };
    t.wallSeconds += wallSeconds;
    t.cpuSeconds += cpuSeconds;
    t.count += count;
    this.totals.set(phase, t);
  }

  /** Runs `fn` as phase `phase`, ending it however `fn` ends. */
  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    this.start(phase);
    try {
      return await fn();
    } finally {
      this.end();
    }
  }

  /** The phases in the order they were first entered, seconds rounded to 0.01. */
  phases(): PhaseTiming[] {
    const r = (x: number) => Math.round(x * 100) / 100;
    return [...this.totals.values()].map((t) => ({ ...t, wallSeconds: r(t.wallSeconds), cpuSeconds: r(t.cpuSeconds) }));
  }
}

/** A table of phases for a person: name, wall seconds, share of the total wall time, CPU seconds. */
export function formatPhaseTable(phases: readonly PhaseTiming[], totalWallSeconds: number): string[] {
  const width = Math.max(5, ...phases.map((p) => p.phase.length + (p.count > 1 ? ` ×${p.count}`.length : 0)));
  const lines = [`${'phase'.padEnd(width)}  wall s  share   cpu s`];
  for (const p of phases) {
    const name = p.count > 1 ? `${p.phase} ×${p.count}` : p.phase;
    const share = totalWallSeconds > 0 ? (100 * p.wallSeconds) / totalWallSeconds : 0;
    lines.push(
      `${name.padEnd(width)}  ${p.wallSeconds.toFixed(1).padStart(6)}  ${share.toFixed(0).padStart(4)} %  ${p.cpuSeconds.toFixed(1).padStart(6)}`,
    );
  }
  return lines;
}
