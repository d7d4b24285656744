/** Public surface of privacy/ (pure DP and crypto, no I/O). Import from here or from the modules directly. */
export * from './random.ts';
export * from './dp/rational.ts';
export * from './dp/discrete-gaussian.ts';
export * from './dp/accountant.ts';
export * from './crypto/field.ts';
export * from './crypto/shamir.ts';
export * from './crypto/bfv.ts';
export * from './crypto/secure-aggregation.ts';
