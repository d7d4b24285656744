// Original file: federation.proto


export interface PushAck {
  'accepted'?: (boolean);
  'duplicate'?: (boolean);
  'message'?: (string);
}

export interface PushAck__Output {
  'accepted': (boolean);
  'duplicate': (boolean);
  'message': (string);
}
