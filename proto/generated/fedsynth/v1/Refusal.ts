// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';

export interface Refusal {
  'header'?: (_fedsynth_v1_Header | null);
  'reason'?: (string);
}

export interface Refusal__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'reason': (string);
}
