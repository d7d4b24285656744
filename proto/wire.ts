// Loads the wire contract once and exposes the gRPC service definition plus codecs for the
// bodies that travel inside Chunk streams. Both sides import only this and proto/generated.
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ProtoGrpcType } from './generated/federation.ts';
import type { Contribution, Contribution__Output } from './generated/fedsynth/v1/Contribution.ts';
import type { CommitteeKey, CommitteeKey__Output } from './generated/fedsynth/v1/CommitteeKey.ts';
import type { PartialDecryption, PartialDecryption__Output } from './generated/fedsynth/v1/PartialDecryption.ts';
import type { DecryptionInput, DecryptionInput__Output } from './generated/fedsynth/v1/DecryptionInput.ts';

export const PROTO_PATH = fileURLToPath(new URL('./federation.proto', import.meta.url));

/** Chunk payloads are cut to this size: inside grpc-js's limits, large enough for throughput. */
export const CHUNK_BYTES = 512 * 1024;

/** Largest body a single result may have; a round larger than this is split by the planner. */
export const MAX_BODY_BYTES = 1024 * 1024 * 1024;

/** Per-message gRPC limit: a chunk plus its header, with margin. */
export const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;

const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cachedGrpc: ProtoGrpcType | undefined;
export function loadFederationService(): ProtoGrpcType {
  if (!cachedGrpc) {
    const def = protoLoader.loadSync(PROTO_PATH, loaderOptions);
    cachedGrpc = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cachedGrpc;
}

let cachedRoot: protobuf.Root | undefined;
function root(): protobuf.Root {
  if (!cachedRoot) cachedRoot = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  return cachedRoot;
}

/** A body failed to decode: malformed bytes, wrong type or missing fields. */
export class MalformedBodyError extends Error {}

function codec<In extends object, Out extends object>(typeName: string) {
  return {
    encode(value: In): Uint8Array {
      const type = root().lookupType(typeName);
      const problem = type.verify(value as Record<string, unknown>);
      if (problem) throw new MalformedBodyError(`${typeName}: ${problem}`);
      return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    },
    decode(bytes: Uint8Array): Out {
      const type = root().lookupType(typeName);
      try {
        const message = type.decode(bytes);
        return type.toObject(message, { longs: String, bytes: Buffer, defaults: true, arrays: true }) as Out;
      } catch (err) {
        throw new MalformedBodyError(`${typeName}: cannot decode ${bytes.length} bytes: ${(err as Error).message}`);
      }
    },
  };
}

export const ContributionCodec = codec<Contribution, Contribution__Output>('fedsynth.v1.Contribution');
export const CommitteeKeyCodec = codec<CommitteeKey, CommitteeKey__Output>('fedsynth.v1.CommitteeKey');
export const PartialDecryptionCodec = codec<PartialDecryption, PartialDecryption__Output>('fedsynth.v1.PartialDecryption');
export const DecryptionInputCodec = codec<DecryptionInput, DecryptionInput__Output>('fedsynth.v1.DecryptionInput');

/** Cuts a body into Chunk-sized slices (never empty: an empty body is one empty slice). */
export function* sliceBody(body: Uint8Array, chunkBytes = CHUNK_BYTES): Generator<Uint8Array> {
  if (body.length === 0) {
    yield body;
    return;
  }
  for (let off = 0; off < body.length; off += chunkBytes) yield body.subarray(off, Math.min(body.length, off + chunkBytes));
}

export const channelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};
