// Original file: federation.proto


export interface PartialDecryption {
  'member_id'?: (string);
  'point'?: (number);
  'share'?: (number)[];
}

export interface PartialDecryption__Output {
  'member_id': (string);
  'point': (number);
  'share': (number)[];
}
