// The simulated hospital FHIR server lives with the simulator (the demo uses it too).
export * from '../../cli/simulate/fhir-server.ts';
