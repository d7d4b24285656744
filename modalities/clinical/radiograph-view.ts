// Which frontal projection a chest radiograph is taken in, by age. An adult or an older child stands
// facing the detector and is imaged posteroanterior (PA: the heart close to the detector, little
// magnified); an infant or young child, who cannot stand still and hold a breath on command, is imaged
// anteroposterior (AP), supine or held sitting. Paediatric radiography texts put the change at about
// 4-5 years (Bontrager's Textbook of Radiographic Positioning, paediatric chapter: supine AP for infants
// and toddlers, erect PA once the child can cooperate; Radiopaedia, "Paediatric chest (AP supine
// view)" and "Chest (PA erect view)"). A synthetic newborn's chest film labelled PA reads as wrong to a
// radiologist, and an AP film magnifies the heart, which matters to a cardiothoracic ratio.

/** Age in years from which a frontal chest radiograph is taken PA. */
export const CHEST_PA_FROM_AGE_YEARS = 4;

export type FrontalChestView = 'AP' | 'PA';

/** The frontal projection of a chest radiograph at `ageYears` (fractional years at the study). */
export function frontalChestView(ageYears: number): FrontalChestView {
  if (!Number.isFinite(ageYears) || ageYears < 0)
    throw new Error(`frontalChestView: age ${ageYears} is not a non-negative number of years`);
  return ageYears < CHEST_PA_FROM_AGE_YEARS ? 'AP' : 'PA';
}
