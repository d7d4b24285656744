// Original file: federation.proto

import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from '../../fedsynth/v1/Header.ts';

export interface RegisterRequest {
  'header'?: (_fedsynth_v1_Header | null);
  'agentVersion'?: (string);
  'protocolVersion'?: (number);
}

export interface RegisterRequest__Output {
  'header': (_fedsynth_v1_Header__Output | null);
  'agentVersion': (string);
  'protocolVersion': (number);
}
