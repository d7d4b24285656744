// Original file: federation.proto


export interface DecryptionInput {
  'memberId'?: (string);
  'point'?: (number);
  'length'?: (number);
  'ciphertexts'?: (Buffer | Uint8Array | string)[];
  'contributors'?: (number);
}

export interface DecryptionInput__Output {
  'memberId': (string);
  'point': (number);
  'length': (number);
  'ciphertexts': (Buffer)[];
  'contributors': (number);
}
