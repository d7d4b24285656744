// Original file: federation.proto


export interface CommitteeKey {
  'member_id'?: (string);
  'point'?: (number);
  'public_key'?: (Buffer | Uint8Array | string);
  'signature'?: (Buffer | Uint8Array | string);
  'certificate_pem'?: (string);
}

export interface CommitteeKey__Output {
  'member_id': (string);
  'point': (number);
  'public_key': (Buffer);
  'signature': (Buffer);
  'certificate_pem': (string);
}
