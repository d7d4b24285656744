// Original file: federation.proto

import type { SignedShare as _fedsynth_v1_SignedShare, SignedShare__Output as _fedsynth_v1_SignedShare__Output } from '../../fedsynth/v1/SignedShare.ts';

export interface DecryptionInput {
  'member_id'?: (string);
  'point'?: (number);
  'length'?: (number);
  'contributors'?: (number);
  'contributions'?: (_fedsynth_v1_SignedShare)[];
}

export interface DecryptionInput__Output {
  'member_id': (string);
  'point': (number);
  'length': (number);
  'contributors': (number);
  'contributions': (_fedsynth_v1_SignedShare__Output)[];
}
