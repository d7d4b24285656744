// Original file: federation.proto


export interface SignedShare {
  'site_id'?: (string);
  'certificate_pem'?: (string);
  'quorum'?: (number);
  'ciphertexts'?: (Buffer | Uint8Array | string)[];
  'signature'?: (Buffer | Uint8Array | string);
}

export interface SignedShare__Output {
  'site_id': (string);
  'certificate_pem': (string);
  'quorum': (number);
  'ciphertexts': (Buffer)[];
  'signature': (Buffer);
}
