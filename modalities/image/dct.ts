/**
 * Orthonormal 2-D DCT-II (forward) and DCT-III (inverse) on row-major Float64 images. The
 * low-frequency block of the DCT is the *public* image basis of the image model: it depends on
 * no data, so projecting onto it costs no privacy budget (docs/modalities.md). Pure.
 *
 * Separable: a 1-D transform along rows then columns, with cosine tables cached per length.
 * Cost O(h·w·(h+w)); images here are small (the model grid, e.g. 32×32).
 */

const tables = new Map<number, Float64Array>();

/** cos table T[k·n + x] = s(k)·cos(π(2x+1)k / 2n), s(0)=√(1/n), s(k)=√(2/n): the orthonormal DCT-II matrix. */
export function dctMatrix(n: number): Float64Array {
  let t = tables.get(n);
  if (t) return t;
  if (!Number.isInteger(n) || n < 1) throw new Error(`dctMatrix: length must be a positive integer, got ${n}`);
  t = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
    for (let x = 0; x < n; x++) t[k * n + x] = s * Math.cos((Math.PI * (2 * x + 1) * k) / (2 * n));
  }
  tables.set(n, t);
  return t;
}

/** Forward orthonormal 2-D DCT-II of an h×w image (row-major). Returns h×w coefficients, [u·w + v] = vertical freq u, horizontal v. */
export function dct2(image: ArrayLike<number>, h: number, w: number): Float64Array {
  if (image.length !== h * w) throw new Error(`dct2: expected ${h}×${w} = ${h * w} values, got ${image.length}`);
  const th = dctMatrix(h);
  const tw = dctMatrix(w);
  const tmp = new Float64Array(h * w);
  // Rows: tmp[y, v] = Σ_x image[y, x] · tw[v, x]
  for (let y = 0; y < h; y++) {
    for (let v = 0; v < w; v++) {
      let s = 0;
      const row = y * w;
      const tv = v * w;
      for (let x = 0; x < w; x++) s += image[row + x] * tw[tv + x];
      tmp[row + v] = s;
    }
  }
  const out = new Float64Array(h * w);
  // Columns: out[u, v] = Σ_y tmp[y, v] · th[u, y]
  for (let u = 0; u < h; u++) {
    const tu = u * h;
    for (let y = 0; y < h; y++) {
      const c = th[tu + y];
      if (c === 0) continue;
      const row = y * w;
      const orow = u * w;
      for (let v = 0; v < w; v++) out[orow + v] += c * tmp[row + v];
    }
  }
  return out;
}

/** Inverse (DCT-III, orthonormal) of `dct2`: h×w coefficients → h×w image. */
export function idct2(coef: ArrayLike<number>, h: number, w: number): Float64Array {
  if (coef.length !== h * w) throw new Error(`idct2: expected ${h}×${w} = ${h * w} values, got ${coef.length}`);
  const th = dctMatrix(h);
  const tw = dctMatrix(w);
  // Columns: tmp[y, v] = Σ_u coef[u, v] · th[u, y]
  const tmp = new Float64Array(h * w);
  for (let u = 0; u < h; u++) {
    const crow = u * w;
    let any = false;
    for (let v = 0; v < w; v++)
      if (coef[crow + v] !== 0) {
        any = true;
        break;
      }
    if (!any) continue;
    for (let y = 0; y < h; y++) {
      const c = th[u * h + y];
      const row = y * w;
      for (let v = 0; v < w; v++) tmp[row + v] += c * coef[crow + v];
    }
  }
  // Rows: out[y, x] = Σ_v tmp[y, v] · tw[v, x]
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let v = 0; v < w; v++) {
      const c = tmp[row + v];
      if (c === 0) continue;
      const tv = v * w;
      for (let x = 0; x < w; x++) out[row + x] += c * tw[tv + x];
    }
  }
  return out;
}

/** The k×k low-frequency block of an h×w coefficient array, as a vector of k·k values (row-major in (u, v)). */
export function lowFrequencyBlock(coef: ArrayLike<number>, h: number, w: number, k: number): Float64Array {
  if (k > h || k > w) throw new Error(`lowFrequencyBlock: block ${k} larger than ${h}×${w}`);
  const out = new Float64Array(k * k);
  for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) out[u * k + v] = coef[u * w + v];
  return out;
}

/** Places a k×k block into an otherwise zero h×w coefficient array (high frequencies dropped). */
export function padLowFrequencyBlock(block: ArrayLike<number>, k: number, h: number, w: number): Float64Array {
  if (block.length !== k * k) throw new Error(`padLowFrequencyBlock: expected ${k * k} values, got ${block.length}`);
  const out = new Float64Array(h * w);
  for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) out[u * w + v] = block[u * k + v];
  return out;
}
