/**
 * The chest atlas: one real frontal (PA) chest radiograph from the NIH ChestX-ray14 set, shipped
 * in `atlas/` (see atlas/README.md for its origin, licence and how it was cleaned), with the
 * landmarks the synthetic radiographs are deformed around. Coordinates are normalised to the
 * image, x to the right of the viewer (the patient's left), y down.
 *
 * The atlas is read once per thread on first use (its pixels, a small pyramid of 2×2 averages and
 * a rasterised lung mask: a fixed set of arrays, never grown).
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export const ATLAS_SIDE = 512;
const ATLAS_FILE = new URL('./atlas/nih-chest-pa-512.u8.deflate', import.meta.url);

/**
 * Lung field outlines, traced by hand on the atlas (source pixels of the 1024×1024 original / 1024).
 * The patient's right lung is on the viewer's left.
 */
const RIGHT_LUNG: readonly [number, number][] = [
  [300, 150],
  [340, 128],
  [390, 135],
  [425, 170],
  [445, 230],
  [450, 300],
  [440, 420],
  [425, 520],
  [400, 600],
  [385, 664],
  [330, 690],
  [260, 700],
  [200, 725],
  [150, 750],
  [118, 765],
  [130, 700],
  [145, 600],
  [165, 500],
  [190, 400],
  [215, 300],
  [250, 210],
];
const LEFT_LUNG: readonly [number, number][] = [
  [620, 140],
  [660, 122],
  [720, 135],
  [780, 165],
  [828, 264],
  [858, 384],
  [868, 514],
  [878, 664],
  [883, 840],
  [838, 784],
  [778, 704],
  [698, 614],
  [640, 540],
  [625, 460],
  [618, 364],
  [598, 294],
  [600, 220],
];

/** Landmarks of the atlas (normalised). */
export const ATLAS_LANDMARKS = {
  /** Centre of the thorax: midway between the lateral lung edges, midway apex to diaphragm. */
  thorax: { x: 0.489, y: 0.47 },
  /** Centre of the cardiac silhouette and its half extents. */
  heart: { x: 0.6, y: 0.635, halfWidth: 0.21, halfHeight: 0.15 },
} as const;

/** Lung mask codes. */
export const LUNG = { none: 0, right: 1, left: 2 } as const;

/** Side of the rasterised lung mask. */
export const MASK_SIDE = 128;

export interface ChestAtlas {
  /** Density levels (value / 255, bright = dense): side 512, 256, 128, 64. */
  levels: { side: number; density: Float32Array }[];
  /** MASK_SIDE² lung codes (LUNG). */
  lungMask: Uint8Array;
}

let atlas: ChestAtlas | undefined;

/** The atlas of this thread (read on first use). */
export function chestAtlas(): ChestAtlas {
  if (atlas) return atlas;
  const bytes = inflateSync(readFileSync(ATLAS_FILE));
  if (bytes.length !== ATLAS_SIDE * ATLAS_SIDE) throw new Error(`chest atlas: ${bytes.length} bytes, expected ${ATLAS_SIDE * ATLAS_SIDE}`);
  const top = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) top[i] = bytes[i] / 255;
  const levels = [{ side: ATLAS_SIDE, density: top }];
  while (levels[levels.length - 1].side > 64) {
    const { side, density } = levels[levels.length - 1];
    const h = side / 2;
    const next = new Float32Array(h * h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < h; x++) {
        const o = 2 * y * side + 2 * x;
        next[y * h + x] = 0.25 * (density[o] + density[o + 1] + density[o + side] + density[o + side + 1]);
      }
    levels.push({ side: h, density: next });
  }
  atlas = { levels, lungMask: rasterise() };
  return atlas;
}

/** Even–odd point-in-polygon test (polygon in source pixels). */
function inside(poly: readonly [number, number][], x: number, y: number): boolean {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function rasterise(): Uint8Array {
  const mask = new Uint8Array(MASK_SIDE * MASK_SIDE);
  const scale = 1024 / MASK_SIDE;
  for (let y = 0; y < MASK_SIDE; y++)
    for (let x = 0; x < MASK_SIDE; x++) {
      const sx = (x + 0.5) * scale;
      const sy = (y + 0.5) * scale;
      mask[y * MASK_SIDE + x] = inside(RIGHT_LUNG, sx, sy) ? LUNG.right : inside(LEFT_LUNG, sx, sy) ? LUNG.left : LUNG.none;
    }
  return mask;
}
