// The ledger cross-checked with the site's signed audit log before it is opened. Every charge is
// written to the ledger first and to the audit log after (site-agent/ledger.ts), so a charge the
// audit log holds and the ledger lacks means the ledger lost lines (a truncated file, an older
// backup restored): opening it would under-count spent budget and drop the cached answer of that
// task as unsent, so a retry would be noised and charged afresh. The agent refuses instead,
// before anything in the state folder is changed.
import * as path from 'node:path';
import { readJsonLinesFile } from './audit-log.ts';
import { ANSWERS_DIR, AUDIT_FILE, LEDGER_FILE, openLedger, type Ledger, type OpenLedgerOptions } from './ledger.ts';

export class LedgerAuditMismatchError extends Error {
  override name = 'LedgerAuditMismatchError';
}

interface LoggedCharge {
  taskId: string;
  roundId: string;
  rho: number;
  line: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseLines(file: string, what: string): unknown[] {
  // Only complete lines: a torn last line is a crash mid-write, which the opener handles.
  return readJsonLinesFile(file).lines.map((line, i) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new LedgerAuditMismatchError(
        `${what} ${file} line ${i + 1} is not valid JSON, so the ledger cannot be checked against the audit log; refusing to start. Restore ${what} from a backup or inspect that line; nothing in the state folder was changed`,
      );
    }
  });
}

/** Charges `party` recorded in its own audit log, by task id. */
function auditCharges(file: string, party: string): Map<string, LoggedCharge> {
  const out = new Map<string, LoggedCharge>();
  parseLines(file, 'audit log').forEach((e, i) => {
    if (!isObj(e) || e.party !== party || !isObj(e.event) || e.event.type !== 'charge') return;
    const ev = e.event;
    if (typeof ev.taskId === 'string' && typeof ev.rho === 'number')
      out.set(ev.taskId, { taskId: ev.taskId, roundId: String(ev.roundId), rho: ev.rho, line: i + 1 });
  });
  return out;
}

/**
 * Refuses (LedgerAuditMismatchError) when the audit log in `dir` records a charge of `party` that
 * the ledger does not hold, or holds with another ρ. Reads the audit log before the ledger, so a
 * charge completed in between (ledger first, then audit) is never mistaken for a lost one.
 */
export function checkLedgerAgainstAuditLog(dir: string, party: string): void {
  const auditFile = path.join(dir, AUDIT_FILE);
  const ledgerFile = path.join(dir, LEDGER_FILE);
  const logged = auditCharges(auditFile, party);
  const ledger = new Map<string, number>();
  for (const r of parseLines(ledgerFile, 'ledger'))
    if (isObj(r) && typeof r.taskId === 'string' && typeof r.rho === 'number') ledger.set(r.taskId, r.rho);
  const missing = [...logged.values()].filter((c) => !ledger.has(c.taskId));
  const differing = [...logged.values()].filter((c) => ledger.has(c.taskId) && ledger.get(c.taskId) !== c.rho);
  if (missing.length === 0 && differing.length === 0) return;
  const lost = missing.reduce((s, c) => s + c.rho, 0);
  const parts: string[] = [];
  if (missing.length)
    parts.push(
      `${missing.length} charge(s) recorded in the signed audit log are missing from the ledger (ρ ${lost} in total): ${missing
        .map((c) => `task ${c.taskId} of round ${c.roundId}, ρ ${c.rho} (audit line ${c.line})`)
        .join('; ')}`,
    );
  if (differing.length)
    parts.push(
      `${differing.length} charge(s) differ in ρ between the audit log and the ledger: ${differing
        .map((c) => `task ${c.taskId}: audit ρ ${c.rho}, ledger ρ ${ledger.get(c.taskId)}`)
        .join('; ')}`,
    );
  throw new LedgerAuditMismatchError(
    `ledger ${ledgerFile} does not match the site's audit log ${auditFile}: ${parts.join('. ')}. ` +
      `Starting would under-count the budget already spent and discard the cached answers of those tasks, so the agent refuses. ` +
      `Restore ${LEDGER_FILE} (with ${ANSWERS_DIR}/) from a backup that holds these charges, or check the disk that lost them; ` +
      `nothing in ${dir} was changed (the cached answers in ${ANSWERS_DIR}/ are kept)`,
  );
}

/** Opens the ledger after checking it against the site's audit log (when the ledger has one). */
export function openCheckedLedger(dir: string, options: OpenLedgerOptions = {}): Ledger {
  if (options.audit) checkLedgerAgainstAuditLog(path.resolve(dir), options.audit.party);
  return openLedger(dir, options);
}
