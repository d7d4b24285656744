// Image modality: DP image model (public DCT basis, clipped per-patient coefficients, noisy
// class statistics), decoder to synthetic radiographs, DICOM writer/validator, PNG previews.
export * from './dct.ts';
export * from './clip.ts';
export * from './model.ts';
export * from './decode.ts';
export * from './phantom.ts';
export * from './dicom-writer.ts';
export * from './validate.ts';
export * from './png.ts';
