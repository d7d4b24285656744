// `fedsynth cohort request|status|download`: cohorts from a running `fedsynth serve`. Download
// uses the FHIR Bulk Data export (kick-off, polling, manifest) and then the report's other files.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { HelpRequest, UsageError } from './args.ts';
import { ApiError, clientArgs, makeClient, print, type Client } from './study.ts';

const HELP = `Usage: fedsynth cohort <request|status|download> --url URL [--token TOKEN] [--json]

  cohort request --study ID --n N [--where "age>=60,sex=female"] [--seed S] [--modalities fhir,dicom,vcf,notes] [--wait]
  cohort status ID
  cohort download ID --out DIR [--fhir-only]
                 FHIR NDJSON through FHIR Bulk Data ($export, polling, manifest), then the DICOM,
                 VCF and note files the cohort's report lists, and report.json

--url defaults to $FEDSYNTH_URL, --token to $FEDSYNTH_TOKEN. Exits non-zero on failure or an empty cohort.
`;

interface CohortView {
  id: string;
  status: string;
  progress: { message?: string; fraction?: number };
  error: string | null;
  report: { patients?: number; downloads?: Record<string, { paths: string[] }> } | null;
}

const line = (c: CohortView) =>
  `${c.id}\t${c.status}${c.progress.message ? ` (${c.progress.message})` : ''}${c.report?.patients !== undefined ? `\t${c.report.patients} patients` : ''}${c.error ? `\terror: ${c.error}` : ''}`;

async function waitFor(client: Client, id: string, quiet: boolean): Promise<CohortView> {
  for (;;) {
    const res = await client.request<CohortView>('GET', `/api/v1/cohorts/${encodeURIComponent(id)}`);
    if (res.body.status === 'completed' || res.body.status === 'failed') return res.body;
    if (!quiet) process.stderr.write(`${line(res.body)}\n`);
    await new Promise((r) => setTimeout(r, 1500));
  }
}

async function download(client: Client, id: string, out: string, fhirOnly: boolean): Promise<number> {
  const kick = await client.request('GET', `/fhir/Group/${encodeURIComponent(id)}/$export`, undefined, {
    accept: 'application/fhir+json',
    prefer: 'respond-async',
  });
  const statusUrl = kick.headers.get('content-location');
  if (kick.status !== 202 || !statusUrl)
    throw new ApiError(kick.status, `export kick-off returned ${kick.status} without Content-Location`);
  const statusPath = new URL(statusUrl).pathname;
  let manifest: { output: { type: string; url: string; count?: number }[] };
  for (;;) {
    const res = await client.request<typeof manifest>('GET', statusPath);
    if (res.status === 200) {
      manifest = res.body;
      break;
    }
    process.stderr.write(`export: ${res.headers.get('x-progress') ?? 'in progress'}\n`);
    await new Promise((r) => setTimeout(r, 1000 * Math.min(10, Number(res.headers.get('retry-after') ?? 2))));
  }
  const root = resolve(out);
  await mkdir(join(root, 'fhir'), { recursive: true });
  let resources = 0;
  for (const o of manifest.output) {
    const res = await client.fetch(new URL(o.url).pathname);
    if (!res.ok) throw new ApiError(res.status, `download of ${o.type} failed: HTTP ${res.status}`);
    await writeFile(join(root, 'fhir', `${o.type}.ndjson`), Buffer.from(await res.arrayBuffer()));
    resources += o.count ?? 0;
  }
  const cohort = (await client.request<CohortView>('GET', `/api/v1/cohorts/${encodeURIComponent(id)}`)).body;
  await writeFile(join(root, 'report.json'), JSON.stringify(cohort.report, null, 2) + '\n');
  let files = 0;
  if (!fhirOnly) {
    for (const [kind, d] of Object.entries(cohort.report?.downloads ?? {})) {
      if (kind === 'fhir') continue;
      for (const rel of d.paths) {
        const target = resolve(root, rel);
        if (!target.startsWith(root + sep)) throw new ApiError(0, `the report lists a path outside the cohort: ${rel}`);
        const res = await client.fetch(`/api/v1/cohorts/${encodeURIComponent(id)}/file?path=${encodeURIComponent(rel)}`);
        if (!res.ok) throw new ApiError(res.status, `download of ${rel} failed: HTTP ${res.status}`);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, Buffer.from(await res.arrayBuffer()));
        files++;
      }
    }
  }
  process.stdout.write(
    `wrote ${resources} FHIR resources (${manifest.output.length} NDJSON files), ${files} other files and report.json to ${root}\n`,
  );
  return resources > 0 ? 0 : 1;
}

export async function runCohortClientCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (rest.includes('--help') || rest.includes('-h')) throw new HelpRequest(HELP);
  const { flags, positional } = clientArgs(
    `fedsynth cohort ${sub}`,
    HELP,
    ['study', 'n', 'where', 'seed', 'modalities', 'out'],
    ['wait', 'fhir-only'],
    rest,
  );
  const client = makeClient(flags);
  try {
    if (sub === 'request') {
      if (typeof flags.study !== 'string') throw new UsageError('cohort request needs --study ID');
      const n = Number(flags.n);
      if (typeof flags.n !== 'string' || !/^\d+$/.test(flags.n) || n < 1)
        throw new UsageError(`--n must be a positive integer, got ${JSON.stringify(flags.n ?? '')}`);
      const seed = flags.seed === undefined ? undefined : Number(flags.seed);
      if (seed !== undefined && (typeof flags.seed !== 'string' || !/^\d+$/.test(flags.seed)))
        throw new UsageError(`--seed must be an integer ≥ 0, got ${JSON.stringify(flags.seed)}`);
      const body = {
        study: flags.study,
        n,
        ...(typeof flags.where === 'string' ? { where: flags.where } : {}),
        ...(seed !== undefined ? { seed } : {}),
        ...(typeof flags.modalities === 'string' ? { modalities: flags.modalities.split(',').map((m) => m.trim()) } : {}),
      };
      const res = await client.request<{ id: string; status: string }>('POST', '/api/v1/cohorts', body);
      if (!flags.wait) {
        print(flags, res.body, `${res.body.id}\t${res.body.status}`);
        return 0;
      }
      const done = await waitFor(client, res.body.id, !!flags.json);
      print(flags, done, line(done));
      return done.status === 'completed' && (done.report?.patients ?? 0) > 0 ? 0 : 1;
    }
    if (sub === 'status') {
      if (positional.length !== 1) throw new UsageError('cohort status needs one cohort id');
      const res = await client.request<CohortView>('GET', `/api/v1/cohorts/${encodeURIComponent(positional[0])}`);
      print(flags, res.body, line(res.body));
      return res.body.status === 'failed' ? 1 : 0;
    }
    if (sub === 'download') {
      if (positional.length !== 1) throw new UsageError('cohort download needs one cohort id');
      if (typeof flags.out !== 'string') throw new UsageError('cohort download needs --out DIR');
      return await download(client, positional[0], flags.out, flags['fhir-only'] === true);
    }
    throw new UsageError(`unknown cohort command ${JSON.stringify(sub)}\n${HELP}`);
  } catch (err) {
    if (err instanceof ApiError) {
      process.stderr.write(`fedsynth cohort ${sub}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
