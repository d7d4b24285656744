// Notes modality: public templates, fact-conditioned generator with optional DP phrase weights,
// verifier (vocabulary + negation), rejection sampling, optional OpenAI-compatible renderer.
export * from './facts.ts';
export * from './vocabulary.ts';
export * from './templates.ts';
export * from './verify.ts';
export * from './generate.ts';
export * from './llm.ts';
export * from './indication.ts';
export * from './medications.ts';
