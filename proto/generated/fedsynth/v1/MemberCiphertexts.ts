// Original file: federation.proto


export interface MemberCiphertexts {
  'member_id'?: (string);
  'point'?: (number);
  'ciphertexts'?: (Buffer | Uint8Array | string)[];
  'signature'?: (Buffer | Uint8Array | string);
}

export interface MemberCiphertexts__Output {
  'member_id': (string);
  'point': (number);
  'ciphertexts': (Buffer)[];
  'signature': (Buffer);
}
