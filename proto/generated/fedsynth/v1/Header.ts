// Original file: federation.proto


export interface Header {
  'federation_id'?: (string);
  'schema_hash'?: (string);
  'round_id'?: (string);
  'task_id'?: (string);
}

export interface Header__Output {
  'federation_id': (string);
  'schema_hash': (string);
  'round_id': (string);
  'task_id': (string);
}
