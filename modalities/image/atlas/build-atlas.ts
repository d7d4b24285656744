// Rebuilds nih-chest-pa-512.u8.deflate from the NIH ChestX-ray14 sample (a development tool,
// not run by the product: the atlas it writes ships in this folder, see README.md):
//   npx tsx modalities/image/atlas/build-atlas.ts <nih_chest_xray_dx.dcm> [out]
// 1. reads the 1024×1024 8-bit MONOCHROME2 frame (implicit VR little endian);
// 2. removes what is not anatomy: the redaction bar along the top edge (copied down from the
//    first clean row) and the burned-in "L" marker and the round skin marker above the left
//    shoulder (each row of that box interpolated linearly between its clean neighbours);
// 3. averages 2×2 blocks to 512×512 and stores one byte per pixel, deflated.
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import dicomParser from 'dicom-parser';

const SOURCE_SIDE = 1024;
export const ATLAS_SIDE = 512;

function readFrame(path: string): Uint8Array {
  const bytes = readFileSync(path);
  const ds = dicomParser.parseDicom(bytes);
  const rows = ds.uint16('x00280010');
  const cols = ds.uint16('x00280011');
  const bits = ds.uint16('x00280100');
  const photometric = ds.string('x00280004');
  if (rows !== SOURCE_SIDE || cols !== SOURCE_SIDE || bits !== 8 || photometric !== 'MONOCHROME2')
    throw new Error(`build-atlas: expected the 1024×1024 8-bit MONOCHROME2 NIH frame, got ${rows}×${cols} ${bits}-bit ${photometric}`);
  const el = ds.elements.x7fe00010;
  if (!el || el.length < SOURCE_SIDE * SOURCE_SIDE) throw new Error('build-atlas: pixel data missing or short');
  return Uint8Array.from(bytes.subarray(el.dataOffset, el.dataOffset + SOURCE_SIDE * SOURCE_SIDE));
}

/** Source-pixel boxes [x0, x1) × [y0, y1) that hold annotation, not anatomy (read off the image). */
const REDACTION_BAR = { x0: 756, x1: 940, y0: 0, y1: 14 };
const MARKERS = { x0: 928, x1: 1012, y0: 40, y1: 168 };

function clean(px: Uint8Array): void {
  const n = SOURCE_SIDE;
  const b = REDACTION_BAR;
  // Mirrored about the bar's lower edge: the rows below continue the shoulders' texture upwards.
  for (let y = b.y0; y < b.y1; y++) for (let x = b.x0; x < b.x1; x++) px[y * n + x] = px[(2 * b.y1 - y) * n + x];
  const m = MARKERS;
  for (let y = m.y0; y < m.y1; y++) {
    const left = px[y * n + m.x0 - 1];
    const right = px[y * n + m.x1];
    for (let x = m.x0; x < m.x1; x++) {
      const t = (x - m.x0 + 1) / (m.x1 - m.x0 + 1);
      px[y * n + x] = Math.round(left + t * (right - left));
    }
  }
}

function downsample(px: Uint8Array): Uint8Array {
  const out = new Uint8Array(ATLAS_SIDE * ATLAS_SIDE);
  for (let y = 0; y < ATLAS_SIDE; y++)
    for (let x = 0; x < ATLAS_SIDE; x++) {
      const o = 2 * y * SOURCE_SIDE + 2 * x;
      out[y * ATLAS_SIDE + x] = (px[o] + px[o + 1] + px[o + SOURCE_SIDE] + px[o + SOURCE_SIDE + 1] + 2) >> 2;
    }
  return out;
}

const [src, out = new URL('./nih-chest-pa-512.u8.deflate', import.meta.url).pathname] = process.argv.slice(2);
if (!src) throw new Error('usage: build-atlas.ts <nih_chest_xray_dx.dcm> [out]');
const frame = readFrame(src);
clean(frame);
writeFileSync(out, deflateSync(downsample(frame), { level: 9 }));
console.log(`wrote ${out}`);
