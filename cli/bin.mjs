#!/usr/bin/env node
// The installed `fedsynth` command: runs the TypeScript CLI (cli/main.ts) through tsx in a child
// process, and stays out of the way of process supervision:
// - SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this wrapper are forwarded to the
//   child, which shuts down as it would if signalled directly (the coordinator frees its port);
// - the child's exit code becomes this process's, and a child killed by a signal makes this
//   process die of the same signal;
// - SIGKILL cannot be forwarded, so the child watches an IPC channel to this wrapper and, when the
//   wrapper dies, signals itself SIGTERM (cli/main.ts, FEDSYNTH_WRAPPER_IPC): no orphan is left.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
// Resolve tsx from this package, not from the caller's working directory.
const tsx = import.meta.resolve('tsx');
const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  env: { ...process.env, FEDSYNTH_WRAPPER_IPC: '1' },
});

const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of FORWARDED) process.on(signal, forward);

child.on('error', (err) => {
  process.stderr.write(`fedsynth: cannot start ${process.execPath}: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so a caller sees what really happened (e.g. 143 for SIGTERM in a shell).
    for (const s of FORWARDED) process.removeListener(s, forward);
    process.kill(process.pid, signal);
    // Should the signal not end this process (a handler elsewhere), exit with the shell's convention.
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000).unref();
    return;
  }
  process.exit(code ?? 1);
});
