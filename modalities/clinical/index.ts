// Public clinical knowledge base: condition onset ages, physiological ranges, lab–condition and
// drug–condition rules, paediatric growth and eGFR, mortality. Data tables with their sources; pure functions.
export * from './conditions.ts';
export * from './ranges.ts';
export * from './treatments.ts';
export * from './antibiotics.ts';
export * from './growth.ts';
export * from './mortality.ts';
export * from './radiograph-view.ts';
export * from './chronic-drugs.ts';
export * from './escalation.ts';
export * from './hypertension.ts';
export * from './defining-labs.ts';
export * from './egfr-equation.ts';
