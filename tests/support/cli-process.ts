// The real `fedsynth` CLI in a process of its own, with a TMPDIR of its own, so a test can check
// what the command (and every process it starts) left behind in the temporary folder.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The TMPDIR the command ran with. */
  tmp: string;
}

/** Runs `fedsynth ...args` with TMPDIR set to a fresh folder under `root`. */
export function runCliWithOwnTmp(root: string, args: string[], timeoutMs = 150_000): Promise<CliRun> {
  const tmp = mkdtempSync(join(root, 'tmp-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../cli/main.ts', import.meta.url)), ...args],
      { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, TMPDIR: tmp }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr, tmp }),
    );
  });
}

/** What a run left in its TMPDIR, apart from tsx's compile cache (tsx-<uid>), which is not the command's. */
export function leftInTmp(tmp: string): string[] {
  return readdirSync(tmp).filter((n) => !/^tsx-\d+$/.test(n));
}
