// Original file: federation.proto


export interface MemberCiphertexts {
  'memberId'?: (string);
  'point'?: (number);
  'ciphertexts'?: (Buffer | Uint8Array | string)[];
}

export interface MemberCiphertexts__Output {
  'memberId': (string);
  'point': (number);
  'ciphertexts': (Buffer)[];
}
