// Fault points: named places in the fit engine where a test can kill the coordinator process
// (`FEDSYNTH_CRASH_AT=<point>`), to show that every crash window resumes after a restart
// (docs/fault-tolerance.md). The variable is read once at load; unset, a fault point is one
// string comparison against `undefined`.

/** Every crash window the engine names, in the order a fit reaches them. */
export const CRASH_POINTS = [
  // Inside the transaction that opens the preflight round with its tasks (rolled back by the crash).
  'preflight.open-tx',
  // The preflight round and its tasks are committed; no answer evaluated yet.
  'preflight.opened',
  'keygen.open-tx',
  'keygen.opened',
  // Every committee key is stored; the keygen round is not yet closed.
  'keygen.keys-stored',
  // Inside the transaction that opens a measure round with its tasks.
  'measure.open-tx',
  'measure.opened',
  // The measure round is closed (no more submissions); nothing aggregated yet.
  'measure.closed',
  // Inside the transaction that writes the aggregates, the decrypt round and its tasks.
  'decrypt.open-tx',
  // The decrypt round is committed; the measure round is not yet marked decrypting.
  'decrypt.opened',
  // The decrypt round is closed; nothing combined or charged yet.
  'decrypt.closed',
  // Inside the release transaction, after charges, measurements and audit entries, before commit.
  'release.tx',
  // The release (charges + measurements) is committed; the next round is not opened.
  'release.done',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const CRASH_AT = process.env.FEDSYNTH_CRASH_AT;

if (CRASH_AT !== undefined && !(CRASH_POINTS as readonly string[]).includes(CRASH_AT)) {
  throw new Error(`FEDSYNTH_CRASH_AT=${CRASH_AT} names no fault point (known: ${CRASH_POINTS.join(', ')})`);
}

/**
 * Kills this process with SIGKILL when `FEDSYNTH_CRASH_AT` names `point`: no finally block, no
 * transaction commit, no flush runs, as with `kill -9` or a power cut.
 */
export function crashPoint(point: CrashPoint): void {
  if (CRASH_AT !== point) return;
  process.stderr.write(`FEDSYNTH_CRASH_AT=${point}: killing the coordinator here\n`);
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL cannot be caught; should the signal be late, nothing after this point runs either.
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
}
