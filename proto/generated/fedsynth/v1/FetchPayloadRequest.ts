// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';

export interface FetchPayloadRequest {
  'header'?: (_fedsynth_v1_Header | null);
}

export interface FetchPayloadRequest__Output {
  'header': (_fedsynth_v1_Header__Output | null);
}
