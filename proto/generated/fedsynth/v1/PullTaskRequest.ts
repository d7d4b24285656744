// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';

export interface PullTaskRequest {
  'header'?: (_fedsynth_v1_Header | null);
  'wait_ms'?: (number);
}

export interface PullTaskRequest__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'wait_ms': (number);
}
