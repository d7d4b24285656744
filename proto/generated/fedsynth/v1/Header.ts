// Original file: federation.proto


export interface Header {
  'federationId'?: (string);
  'schemaHash'?: (string);
  'roundId'?: (string);
  'taskId'?: (string);
}

export interface Header__Output {
  'federationId': (string);
  'schemaHash': (string);
  'roundId': (string);
  'taskId': (string);
}
