/**
 * Site-side image features: the public extractors of modalities/image/finding-scores.ts on a
 * decoded image (modality values, MONOCHROME1 already inverted, bright = dense), resampled to the
 * schema grid by area averaging first.
 */
import { gridImageScores, normaliseGrid, type ImageFeatureResult } from '../../modalities/image/finding-scores.ts';
import { resampleToGrid } from '../connectors/dicom/pixels.ts';

export {
  ageBandFrom,
  findingClass,
  gridImageScores,
  HEART_LEVEL,
  HULL_ROWS,
  imageFindingCodes,
  lungMask,
  LUNG_THRESHOLD,
  MIN_COMPONENT_SHARE,
  NODULE_BASELINE,
  NORMAL_CTR_LIMIT_FROM_AGE,
  normalCtrLimit,
  normaliseGrid,
  BILATERAL_ALLOWANCE,
  NORMAL_MIDDLE_ZONE,
  NORMAL_ZONE_DIFFERENCE,
  OPACITY_CLIP,
  type ImageFeatureResult,
  type ImageScores,
  type ScoreSides,
} from '../../modalities/image/finding-scores.ts';

/** Resamples and normalises to the grid (the extractors' steps 1–2). */
export function normaliseToGrid(pixels: ArrayLike<number>, rows: number, cols: number, grid: number): Float32Array {
  return normaliseGrid(resampleToGrid(pixels, rows, cols, grid));
}

/** Scores of one image on a grid of side `grid`. */
export function imageScores(pixels: ArrayLike<number>, rows: number, cols: number, grid: number): ImageFeatureResult {
  return gridImageScores(resampleToGrid(pixels, rows, cols, grid), grid);
}
