// Original file: federation.proto

import type { MemberCiphertexts as _fedsynth_v1_MemberCiphertexts, MemberCiphertexts__Output as _fedsynth_v1_MemberCiphertexts__Output } from '../../fedsynth/v1/MemberCiphertexts.ts';

export interface Contribution {
  'length'?: (number);
  'shares'?: (_fedsynth_v1_MemberCiphertexts)[];
  'site_id'?: (string);
  'certificate_pem'?: (string);
  'quorum'?: (number);
}

export interface Contribution__Output {
  'length': (number);
  'shares': (_fedsynth_v1_MemberCiphertexts__Output)[];
  'site_id': (string);
  'certificate_pem': (string);
  'quorum': (number);
}
