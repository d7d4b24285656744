// `npm run demo -- --serve`: after the demo's first fit, the same federation as a service on
// loopback: `fedsynth serve` (HTTP API and web page) with the agents still connected, tokens for
// the three roles in DIR/service.json. Runs until SIGINT/SIGTERM.
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { openStore, ROLES, StudyStore } from '../coordinator/store/index.ts';
import { exited, spawnFedsynth, type FederationFiles } from './demo.ts';

export async function serveAfterFit(
  files: FederationFiles,
  outDir: string,
  httpPort: number,
  children: ChildProcess[],
  log: (line: string) => void,
): Promise<void> {
  const raw = YAML.parse(await readFile(files.coordinatorConfig, 'utf8'));
  raw.http = { listen: `127.0.0.1:${httpPort}`, cohorts: join(outDir, 'cohorts') };
  await writeFile(files.coordinatorConfig, YAML.stringify(raw));
  const store = await openStore({ pglite: raw.storage.pglite });
  const tokens: Record<string, string> = {};
  try {
    const keys = new StudyStore(store.sql);
    for (const role of ROLES) tokens[role] = (await keys.createApiKey(`demo ${role}`, role)).token;
  } finally {
    await store.close();
  }
  const url = `http://127.0.0.1:${httpPort}`;
  await writeFile(join(outDir, 'service.json'), JSON.stringify({ url, tokens }, null, 2) + '\n', { mode: 0o600 });
  let listening: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const serve = spawnFedsynth(['serve', '--config', files.coordinatorConfig], (l) => {
    log(`  ${l}`);
    if (/HTTP API and web page/.test(l)) listening();
  });
  children.push(serve);
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const died = exited(serve).then((code) => {
    throw new Error(`fedsynth serve exited with code ${code}`);
  });
  await Promise.race([ready, died]);
  log('');
  log(`The federation is now a service: open ${url}/ and sign in with a token from ${join(outDir, 'service.json')}`);
  log(`  researcher: request a study (the sites' caps allow more) and a filtered cohort; operator: approve studies.`);
  log(`  CLI: fedsynth study request --url ${url} --token <researcher token> --title T --epsilon 0.5`);
  log('Press Ctrl-C to stop the coordinator and the agents.');
  await Promise.race([stop, died]);
  log('stopping the service and the agents');
}
