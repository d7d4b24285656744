// `fedsynth token create|list|revoke`: API keys for the coordinator's HTTP API. The token is
// printed once; the store keeps only its scrypt hash.
import { parseCoordinatorConfig } from './coordinator-config.ts';
import { command, HelpRequest, parseArgs, UsageError } from './args.ts';
import { openStore, ROLES, StoreLockedError, StudyStore, type Role, type Store } from '../coordinator/store/index.ts';

const HELP = `Usage: fedsynth token <create|list|revoke> --config coordinator.yaml

  token create --config coordinator.yaml --role researcher|operator|auditor --name NAME
               prints the new bearer token once (store it now: it cannot be shown again)
  token list   --config coordinator.yaml    keys with id, name, role (never the tokens)
  token revoke --config coordinator.yaml ID
`;

export async function runTokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) throw new HelpRequest(HELP);
  if (sub === undefined) throw new UsageError('needs a command (create, list, revoke)', 'fedsynth token');
  if (!['create', 'list', 'revoke'].includes(sub))
    throw new UsageError(`unknown token command ${JSON.stringify(sub)}\n${HELP}`, 'fedsynth token');
  const { flags, positional } = parseArgs(
    command({
      command: `fedsynth token ${sub}`,
      summary: HELP,
      flags: {
        config: { type: 'path', value: 'coordinator.yaml', required: true, help: 'the coordinator config (finds its store)' },
        role: { type: 'string', value: 'ROLE', help: 'researcher, operator or auditor (create)' },
        name: { type: 'string', value: 'NAME', help: 'who or what holds the key (create)' },
      },
      positionals: { name: 'ID', min: 0, max: 1, help: 'the key to revoke (revoke)' },
    }),
    rest,
  );
  let role: Role | undefined;
  if (sub === 'create') {
    if (typeof flags.role !== 'string' || !(ROLES as readonly string[]).includes(flags.role))
      throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(flags.role ?? '')}`);
    if (typeof flags.name !== 'string' || !flags.name.trim()) throw new UsageError('token create needs --name (who or what holds the key)');
    role = flags.role as Role;
  }
  if (sub === 'revoke' && positional.length !== 1) throw new UsageError('token revoke needs exactly one key id');
  const cfg = parseCoordinatorConfig(flags.config);
  let store: Store;
  try {
    store = await openStore(
      cfg.storage.kind === 'pglite'
        ? { pglite: cfg.storage.dataDir, holder: `fedsynth token ${sub}` }
        : { postgresUrl: cfg.storage.url, schema: cfg.storage.schema },
    );
  } catch (err) {
    // PGlite is single-writer: a key written beside a running service could corrupt its store.
    if (err instanceof StoreLockedError && err.holder) throw new StoreLockedError(`cannot ${sub} keys now: ${err.message}`, err.holder);
    throw err;
  }
  try {
    const keys = new StudyStore(store.sql);
    if (sub === 'create') {
      const { key, token } = await keys.createApiKey(String(flags.name), role!);
      process.stderr.write(`created ${key.role} key ${key.id} (${key.name}); the token below is shown only once\n`);
      process.stdout.write(`${token}\n`);
      return 0;
    }
    if (sub === 'list') {
      const all = await keys.listApiKeys();
      for (const k of all)
        process.stdout.write(`${k.id}\t${k.role}\t${k.name}\t${k.createdAt.toISOString()}${k.revoked ? '\trevoked' : ''}\n`);
      return all.length > 0 ? 0 : 1;
    }
    if (!(await keys.revokeApiKey(positional[0]))) {
      process.stderr.write(`no active key ${positional[0]}\n`);
      return 1;
    }
    process.stdout.write(`revoked ${positional[0]}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
