// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';
import type { Long } from '@grpc/proto-loader';

export interface Task {
  'header'?: (_fedsynth_v1_Header | null);
  'kind'?: (string);
  'specJson'?: (string);
  'payloadBytes'?: (number | string | Long);
  'payloadSha256'?: (string);
  'deadlineUnixMs'?: (number | string | Long);
}

export interface Task__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'kind': (string);
  'specJson': (string);
  'payloadBytes': (string);
  'payloadSha256': (string);
  'deadlineUnixMs': (string);
}
