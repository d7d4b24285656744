// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';

export interface RegisterRequest {
  'header'?: (_fedsynth_v1_Header | null);
  'agent_version'?: (string);
  'protocol_version'?: (number);
}

export interface RegisterRequest__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'agent_version': (string);
  'protocol_version': (number);
}
