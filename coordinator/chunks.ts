// Reassembles a client-streamed body (PushResult) with hard limits, so a malformed or
// oversized upload is rejected before anything is stored — and, with an `admit` check, before
// anything past the first chunk is read: the task and the declared size are judged from the
// first chunk, so a stream for an unknown or expired task costs the coordinator one chunk, not
// the body it announces.
import { createHash } from 'node:crypto';
import type { Chunk__Output } from '../proto/generated/fedsynth/v1/Chunk.ts';
import type { Header__Output } from '../proto/generated/fedsynth/v1/Header.ts';
import { BFV_COEFF_MODULUS_BITS, BFV_POLY_MODULUS_DEGREE } from '../privacy/crypto/bfv.ts';

export class UploadError extends Error {
  constructor(
    message: string,
    readonly code: 'invalid' | 'too-large' | 'digest' | 'busy' | 'stalled',
  ) {
    super(message);
  }
}

export interface ReceivedBody {
  header: Header__Output;
  kind: string;
  body: Buffer;
  sha256: string;
}

/** What the first chunk declares; `admit` sees it before any further chunk is read. */
export interface UploadDeclaration {
  header: Header__Output;
  kind: string;
  declaredBytes: number;
}

export interface ReceiveOptions {
  /**
   * Judges the upload from its first chunk (task, kind, declared size); throwing refuses it
   * before the rest of the body is read. Awaited while the stream is paused.
   */
  admit?: (first: UploadDeclaration) => Promise<void> | void;
  /** Longest wait for the next chunk; a stream silent that long is cut (a slot is not held forever). */
  idleMs?: number;
  /** Called with the size of every chunk taken off the stream (for accounting and tests). */
  onBytes?: (bytes: number) => void;
}

/** Next item of `it`, or an UploadError after `idleMs` of silence. */
async function nextWithin<T>(it: AsyncIterator<T>, idleMs: number | undefined, what: string): Promise<IteratorResult<T>> {
  if (!idleMs) return it.next();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UploadError(`no ${what} within ${idleMs} ms: upload cancelled`, 'stalled')), idleMs);
  });
  try {
    return await Promise.race([it.next(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects chunks from a stream; the first chunk declares header, kind, size and digest. */
export async function receiveBody(
  chunks: AsyncIterable<Chunk__Output>,
  maxBodyBytes: number,
  opts: ReceiveOptions = {},
): Promise<ReceivedBody> {
  const it = chunks[Symbol.asyncIterator]();
  let ended = false;
  try {
    const head = await nextWithin(it, opts.idleMs, 'first chunk');
    if (head.done) {
      ended = true;
      throw new UploadError('empty upload', 'invalid');
    }
    const first = head.value;
    opts.onBytes?.(first.data.length);
    if (!first.header) throw new UploadError('first chunk carries no header', 'invalid');
    if (!first.kind) throw new UploadError('first chunk names no body kind', 'invalid');
    const declared = Number(first.total_bytes);
    if (!Number.isSafeInteger(declared) || declared < 0) throw new UploadError('first chunk declares an invalid size', 'invalid');
    if (declared > maxBodyBytes) {
      throw new UploadError(`declared body of ${declared} bytes exceeds the ${maxBodyBytes}-byte limit`, 'too-large');
    }
    if (!/^[0-9a-f]{64}$/.test(first.sha256)) throw new UploadError('first chunk carries no sha256 digest', 'invalid');
    if (first.data.length > declared) throw new UploadError(`body exceeds its declared ${declared} bytes`, 'too-large');
    await opts.admit?.({ header: first.header, kind: first.kind, declaredBytes: declared });
    // One buffer of the declared size: the body is copied in as it arrives, never more than declared.
    const body = Buffer.allocUnsafe(declared);
    first.data.copy(body, 0);
    let received = first.data.length;
    for (;;) {
      const next = await nextWithin(it, opts.idleMs, 'chunk');
      if (next.done) {
        ended = true;
        break;
      }
      const data = next.value.data;
      opts.onBytes?.(data.length);
      if (received + data.length > declared) throw new UploadError(`body exceeds its declared ${declared} bytes`, 'too-large');
      data.copy(body, received);
      received += data.length;
    }
    if (received !== declared) throw new UploadError(`body ended after ${received} of ${declared} declared bytes`, 'invalid');
    const digest = createHash('sha256').update(body).digest('hex');
    if (digest !== first.sha256) throw new UploadError('body does not match its declared sha256', 'digest');
    return { header: first.header, kind: first.kind, body, sha256: digest };
  } finally {
    // Stops reading a refused stream at once (the rest of its body is never pulled in). Not
    // awaited: with a read still pending (a silent stream) it settles only when the call ends.
    if (!ended) it.return?.().catch(() => undefined);
  }
}

export interface UploadLimits {
  /** Upload streams one site may have open at once. */
  maxStreamsPerSite: number;
  /** Sum of the declared sizes of one site's admitted, unfinished uploads. */
  maxBytesInFlightPerSite: number;
  /** Longest silence before the first chunk or between chunks. */
  idleMs: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  maxStreamsPerSite: 4,
  maxBytesInFlightPerSite: 512 * 1024 * 1024,
  idleMs: 30_000,
};

/** A site's hold on the gate: released exactly once, whatever way the upload ends. */
export interface UploadSlot {
  /** Reserves the declared size against the site's bytes-in-flight cap. */
  reserve(bytes: number): void;
  release(): void;
}

/**
 * Per-site accounting of upload streams: at most `maxStreamsPerSite` open and
 * `maxBytesInFlightPerSite` declared bytes admitted at once. A site over either cap gets
 * RESOURCE_EXHAUSTED at once; other sites are unaffected.
 */
export class UploadGate {
  private readonly streams = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  /** Body bytes taken off upload streams since start (admitted or not). */
  bytesRead = 0;
  refused = 0;

  constructor(readonly limits: UploadLimits = DEFAULT_UPLOAD_LIMITS) {}

  open(siteId: string): UploadSlot {
    const open = this.streams.get(siteId) ?? 0;
    if (open >= this.limits.maxStreamsPerSite) {
      this.refused++;
      throw new UploadError(
        `site ${siteId} already has ${open} upload streams open (limit ${this.limits.maxStreamsPerSite}); retry when one finishes`,
        'busy',
      );
    }
    this.streams.set(siteId, open + 1);
    let reserved = 0;
    let released = false;
    return {
      reserve: (bytes: number) => {
        const now = this.inFlight.get(siteId) ?? 0;
        if (now + bytes > this.limits.maxBytesInFlightPerSite) {
          this.refused++;
          throw new UploadError(
            `site ${siteId} has ${now} bytes of uploads in flight; ${bytes} more would exceed the ${this.limits.maxBytesInFlightPerSite}-byte limit`,
            'busy',
          );
        }
        this.inFlight.set(siteId, now + bytes);
        reserved += bytes;
      },
      release: () => {
        if (released) return;
        released = true;
        const s = (this.streams.get(siteId) ?? 1) - 1;
        if (s > 0) this.streams.set(siteId, s);
        else this.streams.delete(siteId);
        const b = (this.inFlight.get(siteId) ?? reserved) - reserved;
        if (b > 0) this.inFlight.set(siteId, b);
        else this.inFlight.delete(siteId);
      },
    };
  }

  /** Open streams and admitted bytes per site (for tests and metrics). */
  snapshot(): { streams: Record<string, number>; bytesInFlight: Record<string, number>; bytesRead: number; refused: number } {
    return {
      streams: Object.fromEntries(this.streams),
      bytesInFlight: Object.fromEntries(this.inFlight),
      bytesRead: this.bytesRead,
      refused: this.refused,
    };
  }
}

/** Bytes of one serialised BFV object of two polynomials over the full coefficient modulus, plus header slack. */
const BFV_OBJECT_BOUND = 2 * BFV_POLY_MODULUS_DEGREE * 8 * BFV_COEFF_MODULUS_BITS.length + 4096;
/** Certificates, signatures, ids and protobuf framing of one body. */
const BODY_SLACK = 64 * 1024;

/**
 * The largest honest body for a task, from its spec: a measure contribution is one BFV
 * ciphertext per 8192 cells per committee member, a committee key one public key and its
 * certificate, a partial decryption ≤ 5 bytes per cell. A declaration above it is refused before
 * the body is read (an honest agent never sends more).
 */
export function resultByteBound(
  kind: string,
  spec: { length?: number; committee?: readonly unknown[] },
  cells: number | undefined,
  maxBodyBytes: number,
): number {
  let bound: number;
  if (kind === 'measure' && cells !== undefined && spec.committee) {
    const blocks = Math.max(1, Math.ceil(cells / BFV_POLY_MODULUS_DEGREE));
    bound = spec.committee.length * (blocks * (BFV_OBJECT_BOUND + 16) + 1024) + BODY_SLACK;
  } else if (kind === 'keygen') {
    bound = BFV_OBJECT_BOUND + BODY_SLACK;
  } else if (kind === 'decrypt' && typeof spec.length === 'number') {
    bound = spec.length * 5 + BODY_SLACK;
  } else {
    bound = maxBodyBytes;
  }
  return Math.min(bound, maxBodyBytes);
}
