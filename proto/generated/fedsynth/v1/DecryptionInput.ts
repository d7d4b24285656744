// Original file: federation.proto


export interface DecryptionInput {
  'member_id'?: (string);
  'point'?: (number);
  'length'?: (number);
  'ciphertexts'?: (Buffer | Uint8Array | string)[];
  'contributors'?: (number);
}

export interface DecryptionInput__Output {
  'member_id': (string);
  'point': (number);
  'length': (number);
  'ciphertexts': (Buffer)[];
  'contributors': (number);
}
