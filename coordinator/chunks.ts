// Reassembles a client-streamed body (PushResult) with hard limits, so a malformed or
// oversized upload is rejected before anything is stored.
import { createHash } from 'node:crypto';
import type { Chunk__Output } from '../proto/generated/fedsynth/v1/Chunk.ts';
import type { Header__Output } from '../proto/generated/fedsynth/v1/Header.ts';

export class UploadError extends Error {
  constructor(
    message: string,
    readonly code: 'invalid' | 'too-large' | 'digest',
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

/** Collects chunks from a stream; the first chunk declares header, kind, size and digest. */
export async function receiveBody(chunks: AsyncIterable<Chunk__Output>, maxBodyBytes: number): Promise<ReceivedBody> {
  let first: Chunk__Output | undefined;
  let declared = 0;
  const parts: Buffer[] = [];
  let received = 0;
  for await (const chunk of chunks) {
    if (!first) {
      first = chunk;
      if (!chunk.header) throw new UploadError('first chunk carries no header', 'invalid');
      if (!chunk.kind) throw new UploadError('first chunk names no body kind', 'invalid');
      declared = Number(chunk.total_bytes);
      if (!Number.isSafeInteger(declared) || declared < 0) throw new UploadError('first chunk declares an invalid size', 'invalid');
      if (declared > maxBodyBytes) {
        throw new UploadError(`declared body of ${declared} bytes exceeds the ${maxBodyBytes}-byte limit`, 'too-large');
      }
      if (!/^[0-9a-f]{64}$/.test(chunk.sha256)) throw new UploadError('first chunk carries no sha256 digest', 'invalid');
    }
    received += chunk.data.length;
    if (received > declared) throw new UploadError(`body exceeds its declared ${declared} bytes`, 'too-large');
    parts.push(chunk.data);
  }
  if (!first || !first.header) throw new UploadError('empty upload', 'invalid');
  if (received !== declared) throw new UploadError(`body ended after ${received} of ${declared} declared bytes`, 'invalid');
  const body = Buffer.concat(parts, received);
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== first.sha256) throw new UploadError('body does not match its declared sha256', 'digest');
  return { header: first.header, kind: first.kind, body, sha256: digest };
}
