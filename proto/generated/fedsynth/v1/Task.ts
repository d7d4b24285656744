// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';
import type { Long } from '@grpc/proto-loader';

export interface Task {
  'header'?: (_fedsynth_v1_Header | null);
  'kind'?: (string);
  'spec_json'?: (string);
  'payload_bytes'?: (number | string | Long);
  'payload_sha256'?: (string);
  'deadline_unix_ms'?: (number | string | Long);
}

export interface Task__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'kind': (string);
  'spec_json': (string);
  'payload_bytes': (string);
  'payload_sha256': (string);
  'deadline_unix_ms': (string);
}
