// Static checks of deploy/: every YAML file parses, the compose demo is wired as documented
// (configs exist, each agent sees only its own kit and data), the Helm templates use only values
// that exist, the systemd units are hardened, the image runs as non-root; and the two helper
// scripts the image ships (health check, config renderer) work.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseCoordinatorConfig } from '../../cli/coordinator-config.ts';
import { parseSiteConfig } from '../../cli/agent-config.ts';
import { AGENT_EXIT_CODES } from '../../site-agent/agent-errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY = join(ROOT, 'deploy');
const CHART = join(DEPLOY, 'helm/fedsynth');

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
const read = (p: string) => readFileSync(p, 'utf8');
const parse = (p: string) => YAML.parse(read(p), { merge: true });

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedsynth-deploy-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('deploy/ YAML', () => {
  const templatesDir = join(CHART, 'templates');
  const yamlFiles = walk(DEPLOY).filter((p) => /\.ya?ml$/.test(p) && !p.startsWith(templatesDir + '/'));

  it('finds the files the layout promises', () => {
    for (const f of [
      'Dockerfile',
      'docker-compose.yml',
      'compose/coordinator.yaml',
      'compose/coordinator-postgres.yaml',
      'helm/fedsynth/Chart.yaml',
      'helm/fedsynth/values.yaml',
      'helm/fedsynth/templates/_helpers.tpl',
      'helm/fedsynth/templates/NOTES.txt',
      'systemd/fedsynth-agent.service',
      'systemd/fedsynth-coordinator.service',
      'README.md',
    ]) {
      expect(existsSync(join(DEPLOY, f)), f).toBe(true);
    }
  });

  it.each(yamlFiles.map((p) => [relative(DEPLOY, p)]))('%s parses to a mapping', (rel) => {
    const doc = parse(join(DEPLOY, rel));
    expect(typeof doc).toBe('object');
    expect(Array.isArray(doc)).toBe(false);
  });
});

// ---------------------------------------------------------------- compose
describe('docker-compose demo', () => {
  const composePath = join(DEPLOY, 'docker-compose.yml');
  const compose = parse(composePath) as {
    services: Record<string, Record<string, any>>;
    networks: Record<string, any>;
    volumes: Record<string, any>;
  };
  const services = compose.services;
  const agents = Object.keys(services).filter((s) => s.startsWith('agent-'));
  type Mount = { type: string; source: string; target: string; read_only?: boolean; volume?: { subpath?: string } };
  const mounts = (svc: string): Mount[] => (services[svc].volumes ?? []) as Mount[];

  it('has the jobs, a coordinator, three agents and an optional PostgreSQL', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['provision', 'simulate', 'coordinator', 'postgres']));
    expect(agents.sort()).toEqual(['agent-hospital-a', 'agent-hospital-b', 'agent-hospital-c']);
    expect(services.postgres.profiles).toEqual(['postgres']);
    expect(services.coordinator.depends_on.postgres.required).toBe(false);
  });

  it('uses long-syntax mounts only, and every bind source exists', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const m of (svc.volumes ?? []) as Mount[]) {
        expect(typeof m, `${name}: short-syntax mount`).toBe('object');
        if (m.type === 'bind') expect(existsSync(resolve(DEPLOY, m.source)), `${name}: ${m.source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${m.source} is declared`).toContain(m.source);
      }
    }
  });

  it('the build context and Dockerfile exist', () => {
    for (const svc of ['provision', 'simulate', 'coordinator', ...agents]) {
      const b = services[svc].build;
      expect(existsSync(join(resolve(DEPLOY, b.context), b.dockerfile)), svc).toBe(true);
    }
  });

  it('every agent mounts only its own kit, its own data and its own state', () => {
    for (const a of agents) {
      const site = a.slice('agent-'.length);
      const ms = mounts(a);
      const kits = ms.filter((m) => m.target === '/etc/fedsynth/kit');
      expect(kits, a).toHaveLength(1);
      expect(kits[0].read_only).toBe(true);
      expect(kits[0].volume?.subpath).toBe(`federation/sites/${site}`);
      // No mount of the kits volume other than its own kit (in particular never ca/).
      expect(ms.filter((m) => m.source === 'federation')).toHaveLength(1);
      const data = ms.filter((m) => m.source === 'simdata');
      expect(data).toHaveLength(1);
      expect(data[0].read_only).toBe(true);
      expect(data[0].volume?.subpath).toBe(`sim/${site}`);
      const state = ms.filter((m) => m.target === '/var/lib/fedsynth');
      expect(state.map((m) => m.source)).toEqual([`state-${site}`]);
      const cfg = ms.find((m) => m.target === '/etc/fedsynth/site.yaml');
      expect(cfg?.source).toBe(`./compose/site-${site}.yaml`);
      expect(cfg?.read_only).toBe(true);
      // outbound-only: no published ports, only the internal federation network
      expect(services[a].ports).toBeUndefined();
      expect(services[a].networks).toEqual(['federation']);
    }
    // state volumes are not shared between agents
    const states = agents.map((a) => mounts(a).find((m) => m.target === '/var/lib/fedsynth')!.source);
    expect(new Set(states).size).toBe(agents.length);
  });

  it('the coordinator sees only its own kit; the CA key is mounted nowhere but in provision', () => {
    const kit = mounts('coordinator').filter((m) => m.source === 'federation');
    expect(kit).toHaveLength(1);
    expect(kit[0].volume?.subpath).toBe('federation/coordinator');
    expect(kit[0].read_only).toBe(true);
    for (const [name] of Object.entries(services)) {
      if (name === 'provision') continue;
      for (const m of mounts(name).filter((m) => m.source === 'federation')) {
        expect(m.volume?.subpath, name).toBeTruthy();
        expect(m.volume!.subpath!.startsWith('federation/ca'), name).toBe(false);
      }
    }
  });

  it('the networks are internal but the web one, the jobs have none, only the HTTP API is published (loopback)', () => {
    for (const [name, n] of Object.entries(compose.networks)) expect(n?.internal ?? false, name).toBe(name !== 'web');
    expect(services.provision.network_mode).toBe('none');
    expect(services.simulate.network_mode).toBe('none');
    expect(services.tokens.networks).toEqual(['database']);
    for (const [name, svc] of Object.entries(services)) if (name !== 'coordinator') expect(svc.ports, name).toBeUndefined();
    expect(services.coordinator.ports).toEqual(['127.0.0.1:8080:8080']);
    for (const [name, svc] of Object.entries(services)) if (name !== 'coordinator') expect(svc.networks ?? [], name).not.toContain('web');
  });

  it('the coordinator runs `serve` with an http section; the tokens job writes keys before it starts', () => {
    expect((services.coordinator.command as string[])[0]).toBe('serve');
    expect(services.coordinator.depends_on.tokens.condition).toBe('service_completed_successfully');
    for (const name of ['coordinator.yaml', 'coordinator-postgres.yaml'])
      expect(parse(join(DEPLOY, 'compose', name)).http.listen).toBe('0.0.0.0:8080');
    const script = (services.tokens.command as string[]).join(' ');
    for (const role of ['researcher', 'operator', 'auditor']) expect(script).toContain(role);
    expect(script).toMatch(/token create --config \/etc\/fedsynth\/\$\{FEDSYNTH_COORDINATOR_CONFIG:-coordinator.yaml\}/);
  });

  it('fedsynth containers run as non-root with a read-only root FS and no capabilities', () => {
    for (const name of ['provision', 'simulate', 'coordinator', ...agents]) {
      const s = services[name];
      expect(s.user, name).toBe('10001:10001');
      expect(s.read_only, name).toBe(true);
      expect(s.cap_drop, name).toEqual(['ALL']);
      expect(s.security_opt, name).toContain('no-new-privileges:true');
    }
  });

  it('provision names the coordinator host the agents dial and the sites the agents are', () => {
    const cmd = (services.provision.command as string[]).join(' ');
    const hosts = /--hosts\s+(\S+)/.exec(cmd)![1].split(',');
    const sites = /--sites\s+(\S+)/.exec(cmd)![1].split(',');
    expect(sites.sort()).toEqual(agents.map((a) => a.slice('agent-'.length)).sort());
    for (const a of agents) {
      const site = parse(join(DEPLOY, `compose/site-${a.slice('agent-'.length)}.yaml`));
      expect(hosts).toContain(String(site.coordinator).split(':')[0]);
    }
    const simCmd = (services.simulate.command as string[]).join(' ');
    expect(Number(/--sites\s+(\d+)/.exec(simCmd)![1])).toBe(agents.length);
  });

  it('the coordinator command names config files it mounts', () => {
    const cmd = services.coordinator.command as string[];
    const cfg = cmd[cmd.indexOf('--config') + 1];
    const dflt = /\$\{FEDSYNTH_COORDINATOR_CONFIG:-([^}]+)\}/.exec(cfg)![1];
    const targets = mounts('coordinator').map((m) => m.target);
    expect(targets).toContain(`/etc/fedsynth/${dflt}`);
    expect(targets).toContain('/etc/fedsynth/coordinator-postgres.yaml');
  });
});

// ---------------------------------------------------------------- the configs the demo mounts
describe('compose configs load with the real parsers', () => {
  // Map the container paths onto this checkout and a temporary kit.
  function localise(file: string, kitDir: string, stateDir: string): string {
    const text = read(file)
      .replaceAll('/app/', ROOT + '/')
      .replaceAll('/etc/fedsynth/kit', kitDir)
      .replaceAll('/var/lib/fedsynth', stateDir)
      .replaceAll('/srv/fhir', join(stateDir, 'fhir'));
    const out = join(stateDir, basename(file));
    writeFileSync(out, text);
    return out;
  }
  function fakeKit(): string {
    const d = tmp();
    for (const f of ['ca.pem', 'cert.pem', 'key.pem'])
      writeFileSync(join(d, f), '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    return d;
  }

  it.each([['coordinator.yaml'], ['coordinator-postgres.yaml']])('%s', (name) => {
    const cfg = parseCoordinatorConfig(localise(join(DEPLOY, 'compose', name), fakeKit(), tmp()));
    expect(cfg.federationId).toBe('demo');
    expect(cfg.sites).toEqual(['hospital-a', 'hospital-b', 'hospital-c']);
    expect(cfg.listen).toBe('0.0.0.0:7443');
    expect(cfg.storage.kind).toBe(name.includes('postgres') ? 'postgres' : 'pglite');
  });

  it.each([['hospital-a'], ['hospital-b'], ['hospital-c']])('site-%s.yaml', (site) => {
    const coord = parseCoordinatorConfig(localise(join(DEPLOY, 'compose/coordinator.yaml'), fakeKit(), tmp()));
    const cfg = parseSiteConfig(localise(join(DEPLOY, `compose/site-${site}.yaml`), fakeKit(), tmp()));
    expect(cfg.siteId).toBe(site);
    expect(cfg.federationId).toBe(coord.federationId);
    expect(cfg.coordinator).toBe('coordinator:7443');
    expect(cfg.schemaHash).toBe(coord.schemaHash);
    expect(cfg.data.kind).toBe('fhir-ndjson');
    // the site's cap covers the demo's fit, and its quorum floor accepts the coordinator's
    expect(cfg.policy.epsilon).toBeGreaterThan(coord.fit.epsilon);
    expect(cfg.policy.delta).toBe(coord.fit.delta);
    expect(cfg.policy.minQuorum).toBeLessThanOrEqual(coord.rounds.quorum);
    expect(cfg.policy.minThreshold).toBeLessThanOrEqual(coord.committee.threshold);
  });
});

// ---------------------------------------------------------------- Helm
describe('Helm chart', () => {
  const chart = parse(join(CHART, 'Chart.yaml'));
  const values = parse(join(CHART, 'values.yaml'));
  const templates = walk(join(CHART, 'templates'));

  it('Chart.yaml is a v2 application chart', () => {
    expect(chart.apiVersion).toBe('v2');
    expect(chart.name).toBe('fedsynth');
    expect(chart.type).toBe('application');
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
    const pkg = JSON.parse(read(join(ROOT, 'package.json')));
    expect(chart.appVersion).toBe(pkg.version);
  });

  it('has the templates the chart promises', () => {
    const names = templates.map((t) => basename(t));
    for (const t of [
      '_helpers.tpl',
      'NOTES.txt',
      'statefulset-coordinator.yaml',
      'service-coordinator.yaml',
      'secret-kit.yaml',
      'configmap-coordinator.yaml',
      'deployment-agent.yaml',
      'configmap-agent.yaml',
      'networkpolicy.yaml',
      'configmap-revocation.yaml',
    ]) {
      expect(names).toContain(t);
    }
  });

  it('templates reference only values that exist in values.yaml', () => {
    const missing: string[] = [];
    for (const t of templates) {
      for (const m of read(t).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = m[1].slice(1).split('.');
        let node: unknown = values;
        for (const k of path) {
          if (node === null || typeof node !== 'object' || !(k in (node as object))) {
            missing.push(`${basename(t)}: .Values.${path.join('.')}`);
            break;
          }
          node = (node as Record<string, unknown>)[k];
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('template actions are balanced (every if/range/with/define has its end)', () => {
    for (const t of templates) {
      const text = read(t);
      expect((text.match(/\{\{/g) ?? []).length, basename(t)).toBe((text.match(/\}\}/g) ?? []).length);
      const opens = (text.match(/\{\{-?\s*(if|range|with|define|block)\b/g) ?? []).length;
      const ends = (text.match(/\{\{-?\s*end\s*-?\}\}/g) ?? []).length;
      expect(ends, basename(t)).toBe(opens);
    }
  });

  it('the coordinator StatefulSet runs `serve` (never exits, no restart loop) and exposes the HTTP port on the coordinator only', () => {
    const sts = read(join(CHART, 'templates/statefulset-coordinator.yaml'));
    expect(sts).toMatch(/args:\n\s+- serve\n\s+- --config/);
    expect(sts).not.toMatch(/args:\n\s+- coordinator\n/);
    expect(sts).toContain('containerPort: {{ .Values.coordinator.http.port }}');
    expect(read(join(CHART, 'templates/service-coordinator.yaml'))).toContain('port: {{ .Values.coordinator.http.port }}');
    expect(read(join(CHART, 'templates/networkpolicy.yaml'))).toContain('port: {{ .Values.coordinator.http.port }}');
    expect(read(join(CHART, 'templates/deployment-agent.yaml'))).not.toContain('http.port');
    expect(values.coordinator.http.port).toBe(8080);
  });

  it('the coordinator config keys the chart writes are the ones coordinator.yaml knows', () => {
    const known = ['federationId', 'schema', 'listen', 'kit', 'storage', 'sites', 'committee', 'rounds', 'fit', 'http', 'metrics'];
    const helpers = read(join(CHART, 'templates/_helpers.tpl'));
    const block = /define "fedsynth.coordinatorConfig"[\s\S]*?\{\{- toYaml \$cfg \}\}/.exec(helpers)![0];
    const keys = [...block.matchAll(/^\s+"([A-Za-z]+)" /gm)].map((m) => m[1]);
    expect(keys.sort()).toEqual([...known].sort());
    expect(Object.keys(values.coordinator.config).every((k) => known.includes(k))).toBe(true);
    const site = /define "fedsynth.agentConfig"[\s\S]*?\{\{- toYaml \$cfg \}\}/.exec(helpers)![0];
    const siteKeys = [...site.matchAll(/^\s+"([A-Za-z]+)" /gm)].map((m) => m[1]);
    expect(siteKeys.sort()).toEqual(['coordinator', 'data', 'federationId', 'kit', 'policy', 'schema', 'siteId', 'state'].sort());
    // Set only when asked for: the agent's metrics port and, for both, the revocation list.
    expect(site).toMatch(/if \$a\.metrics\.enabled \}\}\n\{\{- \$_ := set \$cfg "metrics"/);
    for (const b of [block, site])
      expect(b).toMatch(
        /if \.Values\.revocation\.crl \}\}\n\{\{- \$_ := set \$cfg "revocationList" "\/etc\/fedsynth\/revocation\/revoked\.crl\.pem"/,
      );
  });

  it('probes use /healthz and /readyz on the metrics port; the agent opens that port only when enabled', () => {
    const sts = read(join(CHART, 'templates/statefulset-coordinator.yaml'));
    expect(sts).toContain('containerPort: {{ .Values.coordinator.metrics.port }}');
    expect(sts).toMatch(/livenessProbe:\n\s+httpGet:\n\s+path: \/healthz\n\s+port: metrics/);
    expect(sts).toMatch(/readinessProbe:\n\s+httpGet:\n\s+path: \/readyz\n\s+port: metrics/);
    expect(sts).toMatch(/startupProbe:\n\s+httpGet:\n\s+path: \/healthz\n\s+port: metrics/);
    expect(values.coordinator.metrics.port).toBe(9464);
    expect(read(join(CHART, 'templates/service-coordinator.yaml'))).toContain('targetPort: metrics');
    const d = read(join(CHART, 'templates/deployment-agent.yaml'));
    const enabled = d.slice(
      d.indexOf('{{- if .Values.agent.metrics.enabled }}'),
      d.indexOf('{{- else }}', d.indexOf('{{- if .Values.agent.metrics.enabled }}')),
    );
    expect(enabled).toMatch(/readinessProbe:\n\s+httpGet:\n\s+path: \/readyz\n\s+port: metrics/);
    expect(enabled).toMatch(/livenessProbe:\n\s+httpGet:\n\s+path: \/healthz\n\s+port: metrics/);
    expect(values.agent.metrics.enabled).toBe(false);
    const np = read(join(CHART, 'templates/networkpolicy.yaml'));
    expect(np).toContain('{{- if and .Values.agent.metrics.enabled .Values.networkPolicy.agent.metricsFrom }}');
    expect(values.networkPolicy.agent.metricsFrom).toEqual([]);
  });

  it("the probes' paths answer on a real ops endpoint: 200 when ready, 503 (not a crash) when a check fails", async () => {
    const { startOpsServer } = await import('../../ops/http.ts');
    const paths = new Set<string>();
    for (const t of ['statefulset-coordinator.yaml', 'deployment-agent.yaml'])
      for (const m of read(join(CHART, 'templates', t)).matchAll(/httpGet:\n\s+path: (\S+)\n\s+port: metrics/g)) paths.add(m[1]);
    expect([...paths].sort()).toEqual(['/healthz', '/readyz']);
    let storeUp: true | string = true;
    const ops = await startOpsServer({ listen: '127.0.0.1:0', ready: { store: () => storeUp } });
    try {
      for (const p of paths) expect((await fetch(ops.url + p)).status, p).toBe(200);
      storeUp = 'the database does not answer';
      expect((await fetch(ops.url + '/healthz')).status).toBe(200);
      const r = await fetch(ops.url + '/readyz');
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ ready: false, checks: { store: 'the database does not answer' } });
    } finally {
      await ops.close();
    }
  });

  it('the revocation list is a ConfigMap mounted as a directory (updates reach running pods)', () => {
    const cm = read(join(CHART, 'templates/configmap-revocation.yaml'));
    expect(cm).toContain('{{- if .Values.revocation.crl }}');
    expect(cm).toContain('revoked.crl.pem: |');
    for (const t of ['statefulset-coordinator.yaml', 'deployment-agent.yaml']) {
      const text = read(join(CHART, 'templates', t));
      expect(text, t).toMatch(/- name: revocation\n\s+mountPath: \/etc\/fedsynth\/revocation\n\s+readOnly: true/);
      expect(text, t).not.toMatch(/subPath: revoked/);
    }
    expect(values.revocation.crl).toBe('');
  });

  it('pods run as non-root with a read-only root FS and no capabilities', () => {
    expect(values.podSecurityContext.runAsNonRoot).toBe(true);
    expect(values.podSecurityContext.runAsUser).toBe(10001);
    expect(values.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(values.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(values.securityContext.capabilities.drop).toEqual(['ALL']);
  });

  it('the agent NetworkPolicy denies ingress and allows egress only to the coordinator and DNS', () => {
    const np = read(join(CHART, 'templates/networkpolicy.yaml'));
    const agentPart = np.slice(0, np.indexOf('{{- if .Values.coordinator.enabled }}'));
    expect(agentPart).toMatch(/policyTypes:\s*\n\s*- Ingress\s*\n\s*- Egress/);
    expect(agentPart).toMatch(/ingress: \[\]/);
    expect(agentPart).toContain('app.kubernetes.io/component: coordinator');
    expect(agentPart).toContain('fedsynth.coordinatorPort');
    expect(values.networkPolicy.enabled).toBe(true);
  });

  it('the agent is a single-replica Deployment with Recreate (one writer per ledger)', () => {
    const d = read(join(CHART, 'templates/deployment-agent.yaml'));
    expect(d).toMatch(/replicas: 1/);
    expect(d).toMatch(/type: Recreate/);
    // A port only inside the opt-in metrics block.
    const outside = d.replace(/\{\{- if \.Values\.agent\.metrics\.enabled \}\}[\s\S]*?\{\{- else \}\}/, '');
    expect(outside).not.toMatch(/containerPort/);
  });

  it('the PostgreSQL URL comes from a Secret, never from the ConfigMap', () => {
    const sts = read(join(CHART, 'templates/statefulset-coordinator.yaml'));
    expect(sts).toContain('storage.postgres=/var/run/secrets/fedsynth-db/');
    expect(sts).toContain('secretName: {{ $pg.existingSecret }}');
    expect(values.coordinator.postgres).toEqual({ enabled: false, existingSecret: '', secretKey: 'url' });
  });
});

// ---------------------------------------------------------------- systemd
describe('systemd units', () => {
  const hardening = [
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'CapabilityBoundingSet=',
    'Restart=on-failure',
  ];
  function directives(text: string): Map<string, string[]> {
    const m = new Map<string, string[]>();
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      if (/^\[.*\]$/.test(line)) {
        section = line;
        continue;
      }
      const eq = line.indexOf('=');
      const key = `${section}${line.slice(0, eq)}`;
      m.set(key, [...(m.get(key) ?? []), line.slice(eq + 1)]);
    }
    return m;
  }

  it.each([['agent'], ['coordinator']])('fedsynth-%s.service is hardened', (role) => {
    const text = read(join(DEPLOY, `systemd/fedsynth-${role}.service`));
    const d = directives(text);
    for (const h of hardening) {
      const eq = h.indexOf('=');
      expect(d.get(`[Service]${h.slice(0, eq)}`), h).toContain(h.slice(eq + 1));
    }
    expect(d.get('[Service]StateDirectory')).toEqual([`fedsynth/${role}`]);
    expect(d.get('[Service]User')).toEqual(['fedsynth']);
    // The coordinator runs as a service (`serve`): it never exits on its own, so no restart loop.
    expect(d.get('[Service]ExecStart')![0]).toContain(`cli/main.ts ${role === 'coordinator' ? 'serve' : role} --config /etc/fedsynth/`);
    // V8 needs W+X memory: setting this would crash node at start.
    expect(d.has('[Service]MemoryDenyWriteExecute')).toBe(false);
    expect(d.get('[Install]WantedBy')).toEqual(['multi-user.target']);
    // An agent that stopped for a reason no restart fixes (its documented exit codes) stays stopped.
    if (role === 'agent')
      expect(d.get('[Service]RestartPreventExitStatus')).toEqual([['2', ...Object.values(AGENT_EXIT_CODES).map(String)].join(' ')]);
  });

  it('systemd-analyze verify accepts the units where it is available', () => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) return; // not installed: nothing to verify with
    for (const role of ['agent', 'coordinator']) {
      const r = spawnSync('systemd-analyze', ['verify', join(DEPLOY, `systemd/fedsynth-${role}.service`)], { encoding: 'utf8' });
      // The only acceptable complaint here is the absent /opt/fedsynth install.
      const problems = `${r.stdout}${r.stderr}`
        .split('\n')
        .filter((l) => l.trim() && !l.includes('/opt/fedsynth') && !/Failed to (create|setup).*\.(slice|service)/.test(l));
      expect(problems, role).toEqual([]);
    }
  });
});

// ---------------------------------------------------------------- Dockerfile
describe('Dockerfile', () => {
  const text = read(join(DEPLOY, 'Dockerfile'));
  const lines = text.split('\n').filter((l) => !l.trim().startsWith('#'));
  const stages = lines
    .join('\n')
    .split(/^FROM /m)
    .slice(1);

  it('is multi-stage on Node 22 slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/ARG NODE_IMAGE=node:22-(bookworm-)?slim/);
  });

  it('installs production dependencies from the lockfile and pins tsx to the locked version', () => {
    expect(text).toMatch(/npm ci --omit=dev/);
    expect(text).toMatch(/packages\['node_modules\/tsx'\]\.version/);
    const lock = JSON.parse(read(join(ROOT, 'package-lock.json')));
    expect(lock.packages['node_modules/tsx']?.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('the final stage runs as a numeric non-root user', () => {
    const last = stages[stages.length - 1];
    const users = [...last.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1];
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(user.split(':')[0]).not.toBe('0');
  });

  it('has a HEALTHCHECK, an ENTRYPOINT through tini, and state under /var/lib/fedsynth', () => {
    expect(text).toMatch(/^HEALTHCHECK .*\\\n\s+CMD \["node", "\/app\/deploy\/docker\/healthcheck\.mjs"\]/m);
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "\/usr\/local\/bin\/fedsynth"\]/m);
    expect(text).toMatch(/install -d -o fedsynth -g fedsynth -m 0700 \/var\/lib\/fedsynth/);
    expect(text).toMatch(/TSX_DISABLE_CACHE=1/);
  });

  it('copies every source folder the CLI imports at run time, and nothing is fetched at run time', () => {
    const copied = [...text.matchAll(/^COPY (?!--from)(\S+) \.\/\S+$/gm)].map((m) => m[1]);
    // Every top-level folder holding run-time code (all but tests/, bench/ and docs), found on disk so a new one cannot be forgotten.
    const runtime = readdirSync(ROOT, { withFileTypes: true })
      .filter(
        (e) => e.isDirectory() && !e.name.startsWith('.') && !['node_modules', 'tests', 'bench', 'docs', 'deploy', 'out'].includes(e.name),
      )
      .map((e) => e.name);
    expect(runtime).toContain('coordinator');
    for (const dir of runtime) {
      expect(copied).toContain(dir);
      expect(statSync(join(ROOT, dir)).isDirectory()).toBe(true);
    }
    const last = stages[stages.length - 1];
    expect(last).not.toMatch(/\b(curl|wget)\b/);
  });

  it('the in-image launcher runs main.ts through the tsx loader installed in /opt/tsx', () => {
    const launcher = read(join(DEPLOY, 'docker/fedsynth'));
    expect(launcher).toContain('exec node --import "file:///opt/tsx/node_modules/tsx/dist/loader.mjs" /app/cli/main.ts "$@"');
    expect(statSync(join(DEPLOY, 'docker/fedsynth')).mode & 0o111).not.toBe(0);
    // the loader path is the one tsx exports as its --import entry
    const tsxPkg = JSON.parse(read(join(ROOT, 'node_modules/tsx/package.json')));
    expect(tsxPkg.exports['.']).toBe('./dist/loader.mjs');
  });

  it('the dockerignore keeps node_modules out of the build context', () => {
    const ignore = read(join(DEPLOY, 'Dockerfile.dockerignore'));
    expect(ignore).toMatch(/^\*$/m);
    expect(ignore).toMatch(/^\*\*\/node_modules$/m);
  });
});

// ---------------------------------------------------------------- the image's helper scripts
describe('deploy/docker helper scripts', () => {
  const node = process.execPath;
  const health = join(DEPLOY, 'docker/healthcheck.mjs');
  const render = join(DEPLOY, 'docker/config-render.mjs');

  function runHealth(env: Record<string, string>): Promise<number> {
    return new Promise<number>((res) => {
      const c = spawn(node, [health], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
      c.on('exit', (code) => res(code ?? 1));
    });
  }
  async function listen(): Promise<{ server: Server; port: number }> {
    const server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as { port: number }).port };
  }

  it('health: coordinator is healthy when its listen port accepts, unhealthy when not', async () => {
    const { server, port } = await listen();
    const d = tmp();
    const cfg = join(d, 'coordinator.yaml');
    writeFileSync(cfg, `listen: 0.0.0.0:${port}\n`);
    // as /proc/1/cmdline reads under tini: NUL-separated, NUL-terminated
    const cmdline = join(d, 'cmdline');
    writeFileSync(cmdline, ['/usr/bin/tini', '--', '/bin/sh', '/usr/local/bin/fedsynth', 'coordinator', '--config', cfg, ''].join('\0'));
    expect(await runHealth({ FEDSYNTH_HEALTH_CMDLINE_FILE: cmdline })).toBe(0);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await runHealth({ FEDSYNTH_HEALTH_CMDLINE_FILE: cmdline, FEDSYNTH_HEALTH_TIMEOUT_MS: '1000' })).toBe(1);
  });

  it('health: FEDSYNTH_HEALTH_ADDR checks a given address', async () => {
    const { server, port } = await listen();
    expect(await runHealth({ FEDSYNTH_HEALTH_ADDR: `127.0.0.1:${port}` })).toBe(0);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await runHealth({ FEDSYNTH_HEALTH_ADDR: `127.0.0.1:${port}` })).toBe(1);
    expect(await runHealth({ FEDSYNTH_HEALTH_ADDR: 'not an address:x' })).toBe(1);
  });

  it('health: agent is healthy while its state directory is writable', async () => {
    const d = tmp();
    const state = join(d, 'state');
    mkdirSync(state);
    const cfg = join(d, 'site.yaml');
    writeFileSync(cfg, 'state: ./state\n');
    expect(await runHealth({ FEDSYNTH_HEALTH_CMDLINE: `fedsynth agent --config ${cfg}` })).toBe(0);
    writeFileSync(cfg, 'state: ./missing\n');
    expect(await runHealth({ FEDSYNTH_HEALTH_CMDLINE: `fedsynth agent --config ${cfg}` })).toBe(1);
    expect(await runHealth({ FEDSYNTH_HEALTH_CMDLINE: 'fedsynth provision --out /x' })).toBe(0);
  });

  it('config-render puts a secret from a file into the config, mode 0600, replacing storage', () => {
    const d = tmp();
    const src = join(d, 'coordinator.yaml');
    writeFileSync(src, read(join(DEPLOY, 'compose/coordinator.yaml')));
    const secret = join(d, 'url');
    writeFileSync(secret, 'postgresql://fedsynth:p%40ss:w0rd@db:5432/fedsynth\n');
    const out = join(d, 'rendered.yaml');
    execFileSync(node, [render, '--in', src, '--out', out, '--replace-parent', '--set-file', `storage.postgres=${secret}`]);
    const doc = YAML.parse(read(out));
    expect(doc.storage).toEqual({ postgres: 'postgresql://fedsynth:p%40ss:w0rd@db:5432/fedsynth' });
    expect(doc.fit.delta).toBe(1e-9);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it('config-render adds a FHIR bearer token without touching the rest of site.yaml', () => {
    const d = tmp();
    const src = join(d, 'site.yaml');
    writeFileSync(src, 'siteId: s\ndata:\n  fhirRest:\n    baseUrl: https://fhir.local/R4\npolicy: {epsilon: 1, delta: 1e-9}\n');
    const tok = join(d, 'token');
    writeFileSync(tok, '  eyJ.secret.token\n');
    const out = join(d, 'out.yaml');
    execFileSync(node, [render, '--in', src, '--out', out, '--set-file', `data.fhirRest.bearerToken=${tok}`]);
    const doc = YAML.parse(read(out));
    expect(doc.data.fhirRest).toEqual({ baseUrl: 'https://fhir.local/R4', bearerToken: 'eyJ.secret.token' });
    expect(doc.policy).toEqual({ epsilon: 1, delta: 1e-9 });
  });

  it('config-render refuses bad arguments with a non-zero exit', () => {
    const r = spawnSync(node, [render, '--in', '/nonexistent'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/usage/);
  });
});
