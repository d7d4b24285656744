// A coordinator in its own process, for the crash-window tests (tests/integration/crash-windows-*):
// reads a CoordinatorConfig as JSON (argv[2]) and runs the fit. FEDSYNTH_CRASH_AT in its
// environment kills it with SIGKILL at that fault point (coordinator/fault.ts).
import { readFileSync } from 'node:fs';
import { startCoordinator } from '../../coordinator/coordinator.ts';
import type { CoordinatorConfig } from '../../coordinator/config.ts';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8')) as CoordinatorConfig;
const running = await startCoordinator(cfg, {
  log: (line) => process.stdout.write(`${line}\n`),
  onProgress: (e) => process.stdout.write(`[${e.phase}] ${e.message}\n`),
});
try {
  const outcome = await running.engine.run();
  process.stdout.write(`FIT-DONE ${outcome.rounds.length} rounds\n`);
} catch (err) {
  process.stdout.write(`FIT-FAILED ${(err as Error).message}\n`);
  process.exitCode = 2;
} finally {
  // Agents polling learn the fit is over before the server goes away: the parent closes this
  // process's stdin once they have left (or at once, if it waits for none).
  await new Promise<void>((resolve) => {
    const bound = setTimeout(resolve, 30_000);
    process.stdin.on('data', () => undefined);
    process.stdin.once('close', () => {
      clearTimeout(bound);
      resolve();
    });
  });
  await running.close();
}
