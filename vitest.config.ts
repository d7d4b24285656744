import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest (measured: `npx vitest run --reporter=json`), longest first. Without
 * a results cache (CI starts from `npm ci`, which deletes node_modules/.vite) vitest starts the
 * largest files first, and these are small: a two-minute file started last adds its whole length
 * to the wall time. Started first, they overlap with the many short files.
 */
const LONG_FILES = [
  'tests/integration/crash-windows-pglite.test.ts',
  'tests/integration/crash-windows-postgres.test.ts',
  'tests/e2e/federation-processes.test.ts',
  'tests/e2e/service-browser.test.ts',
  'tests/integration/round-without-tasks.test.ts',
  'tests/integration/fit-preflight.test.ts',
  'tests/integration/federation-fit.test.ts',
  'tests/integration/audit-mia-federation.test.ts',
  'tests/integration/audit-canary-federation.test.ts',
  'tests/e2e/audit-federation-cli.test.ts',
  'tests/e2e/audit-mia-federation-cli.test.ts',
  'tests/integration/agent-stops-and-drops.test.ts',
  'tests/integration/network-faults.test.ts',
  'tests/integration/service-api.test.ts',
];

// V8's compile cache on disk (Node ≥ 22.1): the forks and every process a test spawns (coordinators,
// agents, `fedsynth` commands, each a fresh `node --import tsx`) then skip compiling the modules
// they load (PGlite, gRPC, protobufjs, the transformed sources), which measured 0.2 s of CPU of a
// 1.35 s process start. Entries are keyed by the source's hash, so a changed file is recompiled.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'fedsynth-node-compile-cache');

class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONG_FILES.indexOf(relative(f.project.config.root, f.moduleId).split('\\').join('/'));
      return i < 0 ? LONG_FILES.length : i;
    };
    // Stable: the rest keep the order the base sequencer gave them (cached durations, else size).
    return sorted
      .map((f, i) => ({ f, i, r: rank(f) }))
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map(({ f }) => f);
  }
}

// Every project's own settings (a project does not inherit the root's test options unless it
// `extends` the root config, which would also merge the root's include patterns into it).
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks',
  // Three forks on two cores: the long files are mostly waiting (round deadlines, process start-up).
  maxWorkers: 3,
} as const;

export default defineConfig({
  test: {
    ...shared,
    sequence: { sequencer: LongFilesFirst },
    projects: [
      {
        // The unit files share a fork instead of each paying its own start-up and module imports
        // (node-seal, PGlite, the FHIR definitions: most of a short file's time). They keep no
        // state across files: no module mocks, stubbed globals or env, fake timers or chdir.
        test: { ...shared, name: 'unit', include: ['tests/unit/**/*.test.ts'], isolate: false },
      },
      {
        // Federations, child processes, signal handlers, mounts: a fresh fork per file.
        test: { ...shared, name: 'integration', include: ['tests/**/*.test.ts'], exclude: ['tests/unit/**'] },
      },
    ],
  },
});
