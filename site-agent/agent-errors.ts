// What the site agent does with a failed call: retry it (the coordinator is away or busy), drop
// the one task it was about (the coordinator will never take it: expired, refused, unknown), or
// stop, because no retry can help (wrong CA, another site's certificate, another federation or
// schema, a state folder it cannot write). Each reason to stop has its own exit code, so an
// operator's supervisor (systemd, Kubernetes) can tell "fix the config" from "try again later".
import * as grpc from '@grpc/grpc-js';

/** Exit codes of `fedsynth agent` (0 done or stopped by a signal, 1 unexpected failure, 2 usage or config). */
export const AGENT_EXIT_CODES = {
  identity: 10,
  tls: 11,
  mismatch: 12,
  disk: 13,
} as const;

export type AgentStopReason = keyof typeof AGENT_EXIT_CODES;

/** The one-line meaning of each exit code, for `fedsynth agent --help` and docs/fault-tolerance.md. */
export const AGENT_EXIT_HELP: Record<AgentStopReason, string> = {
  identity:
    "identity mismatch: the kit's certificate names another site or federation than the config, or the coordinator identifies it as another site or refuses it",
  tls: "TLS trust failure: the coordinator's certificate does not chain to the kit's CA (wrong CA or another federation's kit), names another host, or the coordinator refuses this site's certificate; or the site holds no federation roster signed by its CA",
  mismatch: 'federation or schema mismatch: the coordinator serves another federation id or schema hash than the config',
  disk: 'state folder not writable: the ledger and audit log cannot be opened or recorded (read-only, full, no permission)',
};

/** The agent cannot go on: the message is one line for the operator, `exitCode` the class. */
export class AgentStopError extends Error {
  override name = 'AgentStopError';
  constructor(
    readonly reason: AgentStopReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get exitCode(): number {
    return AGENT_EXIT_CODES[this.reason];
  }
}

/** One task's call was refused for good; the agent forgets the task and pulls again. */
export class TaskDroppedError extends Error {
  override name = 'TaskDroppedError';
}

// grpc-js reports a failed handshake as UNAVAILABLE with the TLS library's text in `details`.
// These are the certificate-verification failures (this side's, or the peer's alert): the same
// certificates fail the same way on every retry, unlike a refused or reset connection.
const TLS_TRUST_FAILURE =
  /self[- ]signed certificate|unable to (?:get local issuer|verify the first|get issuer|verify leaf)|certificate (?:signature failure|has expired|is not yet valid|has been revoked)|Hostname\/IP does not match|does not match certificate'?s altnames|ERR_TLS_CERT_ALTNAME_INVALID|alert (?:unknown ca|bad certificate|certificate unknown|certificate expired|certificate revoked|certificate required|unsupported certificate|access denied)/i;

/** Calls about the agent itself (a failure there concerns every task) vs about one task. */
export type CallKind = 'register' | 'pull' | 'push' | 'refuse' | 'fetch';

export type CallVerdict =
  | { action: 'retry' }
  | { action: 'drop'; error: TaskDroppedError }
  | { action: 'stop'; error: AgentStopError }
  | { action: 'fail'; error: unknown };

/** Decides what a failed call of kind `kind` to `coordinator` means (see the file comment). */
export function classifyCallError(kind: CallKind, err: unknown, coordinator: string): CallVerdict {
  if (err instanceof AgentStopError) return { action: 'stop', error: err };
  const e = err as Partial<grpc.ServiceError>;
  const details = e.details || e.message || String(err);
  if (typeof e.code !== 'number') {
    // Not a call's status (a local failure, e.g. a payload that does not match its digest):
    // retrying the call cannot change it, so the caller gets it as it is.
    return { action: 'fail', error: err };
  }
  if (TLS_TRUST_FAILURE.test(details)) {
    return {
      action: 'stop',
      error: new AgentStopError(
        'tls',
        `TLS handshake with the coordinator at ${coordinator} failed: ${oneLine(details)}; check that this site's kit (ca.pem) and the coordinator's kit come from the same \`fedsynth provision\` and that the address names the coordinator's certificate`,
        { cause: err },
      ),
    };
  }
  const agentWide = kind === 'register' || kind === 'pull';
  if (e.code === grpc.status.UNAUTHENTICATED || (agentWide && e.code === grpc.status.PERMISSION_DENIED)) {
    return {
      action: 'stop',
      error: new AgentStopError('identity', `the coordinator at ${coordinator} refuses this site: ${oneLine(details)}`, { cause: err }),
    };
  }
  if (agentWide && (e.code === grpc.status.FAILED_PRECONDITION || e.code === grpc.status.UNIMPLEMENTED)) {
    return {
      action: 'stop',
      error: new AgentStopError('mismatch', `the coordinator at ${coordinator} refuses this federation: ${oneLine(details)}`, {
        cause: err,
      }),
    };
  }
  const TASK_FINAL = [
    grpc.status.FAILED_PRECONDITION,
    grpc.status.NOT_FOUND,
    grpc.status.INVALID_ARGUMENT,
    grpc.status.PERMISSION_DENIED,
    grpc.status.ALREADY_EXISTS,
    grpc.status.OUT_OF_RANGE,
    grpc.status.UNIMPLEMENTED,
  ];
  if (!agentWide && TASK_FINAL.includes(e.code)) return { action: 'drop', error: new TaskDroppedError(oneLine(details), { cause: err }) };
  return { action: 'retry' };
}

/** A failed call's reason as one line (grpc-js details without its empty resolution note). */
export function describeCallError(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  return oneLine(e.details || e.message || String(err));
}

function oneLine(s: string): string {
  return s
    .replace(/[.\s]*Resolution note:\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}
