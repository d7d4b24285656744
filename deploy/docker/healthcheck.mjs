#!/usr/bin/env node
// Container health check for the fedsynth image (Dockerfile HEALTHCHECK; also usable as a
// Kubernetes exec probe). Exit 0 = healthy, 1 = unhealthy. No network access beyond loopback.
//
//   FEDSYNTH_HEALTH_ADDR=host:port   check only that a TCP connection to host:port opens.
//   otherwise the role is read from the main process's command line: /proc/1/cmdline (another
//   file: FEDSYNTH_HEALTH_CMDLINE_FILE), or FEDSYNTH_HEALTH_CMDLINE (space-separated arguments):
//     coordinator --config F   TCP connect to F's `listen` port on loopback (default 7443)
//     agent --config F         F's `state` directory exists and is writable (the ledger lives there)
//     anything else            healthy (one-shot commands such as provision/simulate)
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';

const TIMEOUT_MS = Number(process.env.FEDSYNTH_HEALTH_TIMEOUT_MS ?? 3000);

function fail(msg) {
  process.stderr.write(`unhealthy: ${msg}\n`);
  process.exit(1);
}
function ok(msg) {
  process.stdout.write(`healthy: ${msg}\n`);
  process.exit(0);
}

export function splitHostPort(addr, fallbackPort = 7443) {
  const s = String(addr).trim();
  const m = /^\[([^\]]*)\](?::(\d+))?$/.exec(s) ?? /^([^:]*)(?::(\d+))?$/.exec(s);
  if (!m) return null;
  let host = m[1];
  if (host === '' || host === '0.0.0.0' || host === '::' || host === '*') host = '127.0.0.1';
  const port = m[2] === undefined ? fallbackPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

function tcpCheck(host, port) {
  const sock = connect({ host, port });
  const timer = setTimeout(() => {
    sock.destroy();
    fail(`no answer from ${host}:${port} within ${TIMEOUT_MS} ms`);
  }, TIMEOUT_MS);
  sock.on('connect', () => {
    clearTimeout(timer);
    sock.end();
    ok(`${host}:${port} accepts connections`);
  });
  sock.on('error', (err) => {
    clearTimeout(timer);
    fail(`${host}:${port}: ${err.code ?? err.message}`);
  });
}

function mainArgs() {
  const raw =
    process.env.FEDSYNTH_HEALTH_CMDLINE ??
    (() => {
      try {
        return readFileSync(process.env.FEDSYNTH_HEALTH_CMDLINE_FILE ?? '/proc/1/cmdline', 'utf8');
      } catch {
        return '';
      }
    })();
  const args = raw.split(raw.includes('\0') ? '\0' : /\s+/).filter((a) => a.length > 0);
  const i = args.findIndex((a) => a === 'coordinator' || a === 'agent');
  if (i < 0) return null;
  const rest = args.slice(i + 1);
  let config;
  for (let j = 0; j < rest.length; j++) {
    if (rest[j] === '--config') config = rest[j + 1];
    else if (rest[j].startsWith('--config=')) config = rest[j].slice('--config='.length);
  }
  return { role: args[i], config };
}

function readConfig(path) {
  try {
    const doc = YAML.parse(readFileSync(path, 'utf8'));
    if (doc && typeof doc === 'object') return doc;
  } catch (err) {
    fail(`cannot read config ${path}: ${err.message.split('\n')[0]}`);
  }
  fail(`config ${path} is not a mapping`);
}

if (process.env.FEDSYNTH_HEALTH_ADDR) {
  const a = splitHostPort(process.env.FEDSYNTH_HEALTH_ADDR);
  if (!a) fail(`FEDSYNTH_HEALTH_ADDR=${process.env.FEDSYNTH_HEALTH_ADDR} is not host:port`);
  tcpCheck(a.host, a.port);
} else {
  const main = mainArgs();
  if (!main) ok('no long-running fedsynth role in this container');
  else if (!main.config) fail(`${main.role} runs without --config`);
  else {
    const cfgPath = resolve(main.config);
    const cfg = readConfig(cfgPath);
    if (main.role === 'coordinator') {
      const a = splitHostPort(cfg.listen ?? '0.0.0.0:7443');
      if (!a) fail(`${cfgPath}: listen ${JSON.stringify(cfg.listen)} is not host:port`);
      tcpCheck(a.host, a.port);
    } else {
      if (typeof cfg.state !== 'string') fail(`${cfgPath}: state is not set`);
      const dir = resolve(dirname(cfgPath), cfg.state);
      try {
        if (!statSync(dir).isDirectory()) fail(`state ${dir} is not a directory`);
        accessSync(dir, constants.W_OK);
      } catch (err) {
        fail(`state ${dir}: ${err.code ?? err.message}`);
      }
      ok(`agent state ${dir} is writable`);
    }
  }
}
