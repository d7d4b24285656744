/** Public surface of privacy/ (pure DP and crypto, no I/O). Import from here or from the modules directly. */
export * from './random.ts';
export * from './rational.ts';
export * from './discrete-gaussian.ts';
export * from './accountant.ts';
export * from './field.ts';
export * from './shamir.ts';
export * from './bfv.ts';
export * from './secure-aggregation.ts';
