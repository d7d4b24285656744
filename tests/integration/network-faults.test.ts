// A site behind a bad network, made by the test itself: the agent of hospital-c runs as its own
// process in a Linux network namespace joined to the host by a veth pair, first over a degraded
// link (tc netem delay and loss; where the kernel has no netem, a tbf shaper whose small queue
// delays and tail-drops instead), then cut off (a partition: netem loss 100%, or the link down)
// for longer than a round's deadline, then healed. The round closes at its deadline with the
// other two sites, hospital-c rejoins and answers the next round, and no site is charged twice
// or loses a charge: the coordinator's charges equal the sites' own ledgers.
//
// Needs root (ip netns, ip link, tc); skipped with the reason when `ip netns add` is refused.
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { spawnSync, type ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { spawnFedsynth, exited } from '../../cli/demo.ts';
import { startTestFederation, type TestFederation } from '../support/federation.ts';
import { runFitAndCohort } from '../../coordinator/coordinator.ts';
import { openLedger } from '../../site-agent/ledger.ts';
import { DEFAULT_SCHEMA_PATH } from '../../simulator/index.ts';

const tag = randomBytes(3).toString('hex');
const NS = `fsnet-${tag}`;
const HOST_IF = `fsh${tag}`;
const NS_IF = `fsn${tag}`;
const NET = `10.${200 + randomInt(50)}.${randomInt(250)}`;
const HOST_IP = `${NET}.1`;
const NS_IP = `${NET}.2`;
// Long enough for an answer over the degraded link on a busy 2-core machine, short enough for the test.
const DEADLINE_MS = 10_000;

function sh(cmd: string[], ns = false): { ok: boolean; out: string } {
  const argv = ns ? ['ip', 'netns', 'exec', NS, ...cmd] : cmd;
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}
function must(cmd: string[], ns = false): string {
  const r = sh(cmd, ns);
  if (!r.ok) throw new Error(`${ns ? `(in ${NS}) ` : ''}${cmd.join(' ')} failed: ${r.out}`);
  return r.out;
}

const probe = sh(['ip', 'netns', 'add', NS]);
const skipReason = probe.ok ? '' : `ip netns add is not permitted here (${probe.out || 'no output'}); run as root on Linux`;
if (skipReason) console.warn(`network-faults: skipped: ${skipReason}`);
// netem is a kernel module that minimal kernels (e.g. Firecracker guests) leave out.
let netem = false;

let fed: TestFederation | undefined;
let agentC: ChildProcess | undefined;
afterAll(async () => {
  if (agentC && agentC.exitCode === null) agentC.kill('SIGKILL');
  await fed?.close();
  if (probe.ok) sh(['ip', 'netns', 'del', NS]); // removes the veth pair with it
});

function setupLink(): void {
  must(['ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF]);
  must(['ip', 'link', 'set', NS_IF, 'netns', NS]);
  must(['ip', 'addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF]);
  must(['ip', 'link', 'set', HOST_IF, 'up']);
  must(['ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF], true);
  must(['ip', 'link', 'set', NS_IF, 'up'], true);
  must(['ip', 'link', 'set', 'lo', 'up'], true);
  netem = sh(['tc', 'qdisc', 'add', 'dev', HOST_IF, 'root', 'netem', 'delay', '100ms', '20ms', 'loss', '5%']).ok;
  if (netem) must(['tc', 'qdisc', 'add', 'dev', NS_IF, 'root', 'netem', 'delay', '100ms', '20ms', 'loss', '5%'], true);
  else {
    // 8 Mbit/s with a 16 KB queue: large uploads queue (delay) and overflow it (tail-drop loss).
    for (const inNs of [false, true])
      must(['tc', 'qdisc', 'add', 'dev', inNs ? NS_IF : HOST_IF, 'root', 'tbf', 'rate', '8mbit', 'burst', '8kb', 'limit', '16kb'], inNs);
  }
}

function partition(on: boolean): void {
  if (netem) {
    const loss = on ? '100%' : '5%';
    must(['tc', 'qdisc', 'change', 'dev', HOST_IF, 'root', 'netem', 'delay', '100ms', '20ms', 'loss', loss]);
    must(['tc', 'qdisc', 'change', 'dev', NS_IF, 'root', 'netem', 'delay', '100ms', '20ms', 'loss', loss], true);
  } else {
    must(['ip', 'link', 'set', HOST_IF, on ? 'down' : 'up']);
    if (!on) must(['ip', 'addr', 'replace', `${HOST_IP}/30`, 'dev', HOST_IF]);
  }
}

/** Packets the shaping qdiscs dropped, both ways (proof the link really lost packets). */
function droppedPackets(): number {
  let n = 0;
  for (const inNs of [false, true]) {
    const out = sh(['tc', '-s', 'qdisc', 'show', 'dev', inNs ? NS_IF : HOST_IF], inNs).out;
    for (const m of out.matchAll(/dropped (\d+)/g)) n += Number(m[1]);
  }
  return n;
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!probe.ok)(`an agent in a network namespace (${skipReason || 'root'})`, () => {
  it('a degraded link, then a partition past the deadline: the round closes without the site, the site rejoins, no charge doubled or lost', async () => {
    setupLink();
    const sites = ['hospital-a', 'hospital-b', 'hospital-c'];
    fed = await startTestFederation({
      sites: 3,
      patients: 60,
      plan: 'mst',
      committee: ['hospital-a', 'hospital-b'],
      threshold: 2,
      quorum: 2,
      cohortSize: 0,
      deadlineMs: DEADLINE_MS,
      manualSites: ['hospital-c'],
      coordinatorHosts: ['localhost', '127.0.0.1', HOST_IP],
    });
    const port = Number(fed.cfg.listen.split(':')[1]);
    fed.cfg.listen = `0.0.0.0:${port}`;
    await fed.restartCoordinator();

    const c = fed.siteCfgs['hospital-c'];
    const siteYaml = join(fed.dir, 'hospital-c.yaml');
    writeFileSync(
      siteYaml,
      YAML.stringify({
        siteId: 'hospital-c',
        federationId: 'test-fed',
        coordinator: `${HOST_IP}:${port}`,
        kit: join(fed.kitsDir, 'sites', 'hospital-c'),
        schema: DEFAULT_SCHEMA_PATH,
        data: { fhirNdjson: join(fed.dir, 'data', 'hospital-c') },
        state: c.stateDir,
        policy: { epsilon: 5, delta: 1e-6, minQuorum: 1, minThreshold: 1 },
      }),
    );
    const lines: string[] = [];
    agentC = spawnFedsynth(['agent', '--config', siteYaml, '--exit-when-done', '--log-format', 'json'], (l) => lines.push(l), [
      'ip',
      'netns',
      'exec',
      NS,
    ]);
    const msgs = () => lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string }).msg : l));

    const fit = runFitAndCohort(fed.cfg, fed.coordinator);
    fit.catch(() => undefined);
    // hospital-c answers its first measure round over the degraded link, then is cut off.
    const firstAnswer = await until(
      'hospital-c to answer a measure round',
      () => msgs().find((m) => /^answered measure task of /.test(m)),
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; hospital-c said:\n${msgs().join('\n')}`);
    });
    const answeredRound = /of (\S+) /.exec(firstAnswer)![1];
    partition(true);
    const cutAt = Date.now();
    const store = fed.coordinator.store;
    const missed = await until(
      'a measure round to close without hospital-c',
      async () => {
        for (const r of await store.listRounds(fed!.cfg.federationId, { kind: 'measure' })) {
          if (r.roundId === answeredRound || r.state === 'open') continue;
          const t = (await store.listTasks(fed!.cfg.federationId, r.roundId)).find((x) => x.siteId === 'hospital-c');
          if (t && t.state !== 'done') return r;
        }
        return undefined;
      },
      DEADLINE_MS + 30_000,
    );
    // Heal. A real partition this long ends the dead TCP connections by keepalive (40 s here);
    // the test ends them at once, as keepalive would, to stay within a minute.
    partition(false);
    sh(['ss', '-K', 'dst', HOST_IP], true);
    sh(['ss', '-K', 'dst', NS_IP]);
    const partitionMs = Date.now() - cutAt;

    const report = await fit;
    expect(await exited(agentC)).toBe(0);

    // The missed round closed at its deadline (not earlier, not much later) with the other two.
    const closed = (await store.getRound(fed.cfg.federationId, missed.roundId))!;
    // Against the round's own deadline: createdAt is the database's clock at the insert, which a
    // loaded machine can stamp some way after the engine fixed the deadline.
    const openMs = closed.closedAt!.getTime() - closed.createdAt.getTime();
    const closedAfterDeadlineMs = closed.closedAt!.getTime() - closed.deadlineAt.getTime();
    expect(closedAfterDeadlineMs).toBeGreaterThanOrEqual(-50);
    expect(closedAfterDeadlineMs).toBeLessThan(5000);
    expect(closed.deadlineAt.getTime() - closed.createdAt.getTime()).toBeGreaterThan(DEADLINE_MS - 1000);
    expect(closed.state).toBe('released');
    const missedCharges = await store.chargesByRound(fed.cfg.federationId, missed.roundId);
    expect(missedCharges.map((ch) => ch.siteId).sort()).toEqual(['hospital-a', 'hospital-b']);
    expect(partitionMs).toBeGreaterThan(DEADLINE_MS - 1000);

    // hospital-c rejoined: it answered a measure round created after the partition healed.
    const rounds = await store.listRounds(fed.cfg.federationId, { kind: 'measure' });
    const after = rounds.filter((r) => r.seq > missed.seq);
    expect(after.length).toBeGreaterThan(0);
    const rejoined = [];
    for (const r of after)
      if ((await store.chargesByRound(fed.cfg.federationId, r.roundId)).some((ch) => ch.siteId === 'hospital-c')) rejoined.push(r.roundId);
    expect(rejoined.length, msgs().join('\n')).toBeGreaterThan(0);
    expect(report.sitesContributed).toEqual(sites);

    // No charge doubled or lost: one coordinator charge per site and round, each equal to the
    // site's own ledger entry for that round; a ledger charge the coordinator lacks would be a
    // site paying for an answer that was never counted.
    const charges = await store.chargesByRound(fed.cfg.federationId);
    for (const s of sites) {
      const mine = charges.filter((ch) => ch.siteId === s);
      expect(new Set(mine.map((ch) => ch.roundId)).size, s).toBe(mine.length);
      fed.agents[s]?.stop();
      await fed.agentRuns[s];
      const ledger = openLedger(fed.siteCfgs[s].stateDir);
      const entries = ledger.records().filter((r) => r.rho !== undefined && r.rho > 0);
      ledger.close();
      const byRound = new Map<string, number>();
      for (const e of entries) {
        expect(byRound.has(e.roundId), `${s} charged twice for ${e.roundId}`).toBe(false);
        byRound.set(e.roundId, e.rho);
      }
      expect([...byRound.keys()].sort(), s).toEqual(mine.map((ch) => ch.roundId).sort());
      for (const ch of mine) expect(byRound.get(ch.roundId), `${s} ${ch.roundId}`).toBeCloseTo(ch.rho, 12);
    }
    console.info(
      `network-faults: ${netem ? 'netem delay 100±20 ms, loss 5%' : 'no netem in this kernel: tbf 8 Mbit/s, 16 KB queue'}; ` +
        `${droppedPackets()} packets dropped by the shaper; partition ${partitionMs} ms (${netem ? 'netem loss 100%' : 'link down'}); ` +
        `missed ${missed.roundId} (open ${openMs} ms, deadline ${DEADLINE_MS} ms); rejoined in ${rejoined.join(', ')}`,
    );
  }, 120_000);
});
