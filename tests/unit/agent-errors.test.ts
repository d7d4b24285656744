// Which failed calls the site agent retries, which drop one task, which stop it. The statuses and
// texts are those grpc-js and the coordinator really produce (seen in the real-mTLS tests of
// tests/integration/agent-stops-and-drops.test.ts); this pins the whole table cheaply.
import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { AGENT_EXIT_CODES, classifyCallError, describeCallError, type CallKind } from '../../site-agent/agent-errors.ts';

const status = (code: grpc.status, details: string) =>
  Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details });
const verdict = (kind: CallKind, err: unknown) => {
  const v = classifyCallError(kind, err, 'localhost:7443');
  return v.action === 'stop' ? `stop ${v.error.exitCode}` : v.action;
};

const REFUSED = 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7443. Resolution note: ';
const WRONG_CA = 'No connection established. Last error: Error: self-signed certificate in certificate chain. Resolution note: ';

describe('classifyCallError', () => {
  it('a coordinator that is away or busy is retried, on every kind of call', () => {
    for (const kind of ['register', 'pull', 'push', 'refuse', 'fetch'] as const) {
      expect(verdict(kind, status(grpc.status.UNAVAILABLE, REFUSED))).toBe('retry');
      expect(verdict(kind, status(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'))).toBe('retry');
      expect(verdict(kind, status(grpc.status.INTERNAL, 'internal error: connection terminated'))).toBe('retry');
    }
  });

  it('a TLS trust failure stops the agent (exit 11) whatever the call, with the reason on one line', () => {
    for (const kind of ['register', 'pull', 'push'] as const)
      expect(verdict(kind, status(grpc.status.UNAVAILABLE, WRONG_CA))).toBe('stop 11');
    const v = classifyCallError('register', status(grpc.status.UNAVAILABLE, WRONG_CA), 'localhost:7443');
    expect(v.action === 'stop' && v.error.message).toMatch(
      /^TLS handshake with the coordinator at localhost:7443 failed: No connection established\. Last error: Error: self-signed certificate in certificate chain; check/,
    );
    expect(verdict('pull', status(grpc.status.UNAVAILABLE, "Hostname/IP does not match certificate's altnames: Host: x"))).toBe('stop 11');
    expect(verdict('pull', status(grpc.status.UNAVAILABLE, 'SSL alert number 48 tlsv1 alert unknown ca'))).toBe('stop 11');
  });

  it('an expired or otherwise final task drops that task only; the same status at registration stops the agent', () => {
    const expired = status(grpc.status.FAILED_PRECONDITION, 'task m1/hospital-c expired: its round closed before this result arrived');
    expect(verdict('push', expired)).toBe('drop');
    expect(verdict('refuse', status(grpc.status.FAILED_PRECONDITION, 'task t was already answered'))).toBe('drop');
    expect(verdict('fetch', status(grpc.status.NOT_FOUND, 'unknown task t'))).toBe('drop');
    expect(verdict('push', status(grpc.status.PERMISSION_DENIED, 'task t is not addressed to hospital-c'))).toBe('drop');
    expect(verdict('register', status(grpc.status.FAILED_PRECONDITION, 'schema hash abab… does not match'))).toBe(
      `stop ${AGENT_EXIT_CODES.mismatch}`,
    );
    expect(verdict('pull', status(grpc.status.FAILED_PRECONDITION, 'federation id "x" does not match y'))).toBe('stop 12');
    expect(verdict('register', status(grpc.status.PERMISSION_DENIED, 'site x is not a member'))).toBe('stop 10');
    expect(verdict('push', status(grpc.status.UNAUTHENTICATED, 'no verified client certificate'))).toBe('stop 10');
  });

  it('a failure that is not a call status is handed back as it is, never retried', () => {
    const local = new Error('task payload does not match its announced sha256');
    const v = classifyCallError('fetch', local, 'c:1');
    expect(v).toEqual({ action: 'fail', error: local });
    expect(verdict('push', Object.assign(new Error('disk'), { code: 'ENOSPC' }))).toBe('fail');
  });

  it('describes a grpc-js failure on one line without its empty resolution note', () => {
    expect(describeCallError(status(grpc.status.UNAVAILABLE, REFUSED))).toBe(
      'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7443',
    );
  });
});
