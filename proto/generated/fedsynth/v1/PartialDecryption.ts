// Original file: federation.proto

import type { Long } from '@grpc/proto-loader';

export interface PartialDecryption {
  'memberId'?: (string);
  'point'?: (number);
  'share'?: (number | string | Long)[];
}

export interface PartialDecryption__Output {
  'memberId': (string);
  'point': (number);
  'share': (string)[];
}
