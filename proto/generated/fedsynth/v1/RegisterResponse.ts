// Original file: federation.proto


export interface RegisterResponse {
  'siteId'?: (string);
  'federationId'?: (string);
  'schemaHash'?: (string);
  'coordinatorVersion'?: (string);
}

export interface RegisterResponse__Output {
  'siteId': (string);
  'federationId': (string);
  'schemaHash': (string);
  'coordinatorVersion': (string);
}
