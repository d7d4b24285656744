// The simulated hospital FHIR server lives with the simulator (the demo uses it too).
export * from '../../simulator/fhir-server.ts';
