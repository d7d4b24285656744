// Original file: federation.proto


export interface CommitteeKey {
  'memberId'?: (string);
  'point'?: (number);
  'publicKey'?: (Buffer | Uint8Array | string);
  'signature'?: (Buffer | Uint8Array | string);
  'certificatePem'?: (string);
}

export interface CommitteeKey__Output {
  'memberId': (string);
  'point': (number);
  'publicKey': (Buffer);
  'signature': (Buffer);
  'certificatePem': (string);
}
