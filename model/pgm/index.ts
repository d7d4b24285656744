/** Private-PGM-style estimator: public surface of model/pgm. */
export {
  estimate,
  estimateWithReport,
  ModelSizeError,
  DEFAULT_MAX_CLIQUE_CELLS,
  type EstimateOptions,
  type EstimateReport,
} from './estimate.ts';
export { GraphicalModel, type GraphicalModelJSON } from './model.ts';
export { buildJunctionTree, minFillOrder, treeSize, type JunctionTree } from './junction-tree.ts';
export { Structure } from './structure.ts';
export type { Measurement } from '../measurement.ts';
