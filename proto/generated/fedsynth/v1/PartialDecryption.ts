// Original file: federation.proto

import type { Long } from '@grpc/proto-loader';

export interface PartialDecryption {
  'member_id'?: (string);
  'point'?: (number);
  'share'?: (number | string | Long)[];
}

export interface PartialDecryption__Output {
  'member_id': (string);
  'point': (number);
  'share': (string)[];
}
