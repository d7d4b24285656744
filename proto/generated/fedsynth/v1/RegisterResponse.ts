// Original file: federation.proto


export interface RegisterResponse {
  'site_id'?: (string);
  'federation_id'?: (string);
  'schema_hash'?: (string);
  'coordinator_version'?: (string);
}

export interface RegisterResponse__Output {
  'site_id': (string);
  'federation_id': (string);
  'schema_hash': (string);
  'coordinator_version': (string);
}
