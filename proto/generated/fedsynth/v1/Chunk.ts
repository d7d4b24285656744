// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';
import type { Long } from '@grpc/proto-loader';

export interface Chunk {
  'header'?: (_fedsynth_v1_Header | null);
  'kind'?: (string);
  'total_bytes'?: (number | string | Long);
  'sha256'?: (string);
  'data'?: (Buffer | Uint8Array | string);
}

export interface Chunk__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'kind': (string);
  'total_bytes': (string);
  'sha256': (string);
  'data': (Buffer);
}
