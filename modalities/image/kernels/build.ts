// Compiles every .wat of this folder to the .wasm beside it (`npm run build:wasm`, run by
// `npm ci` through the `prepare` script). The .wasm files are committed so that running the
// project needs no compiler; .ci/run compiles again and fails if a committed .wasm differs from
// its source. wabt's output is a function of the text alone, so the bytes are reproducible.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const dir = fileURLToPath(new URL('.', import.meta.url));
/** The WebAssembly features the kernels may use; anything else is a compile error. */
const FEATURES = { simd: true, bulk_memory: true, sat_float_to_int: true, mutable_globals: true } as const;

const wabt = await wabtInit();
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith('.wat'))
  .sort()) {
  const mod = wabt.parseWat(name, readFileSync(dir + name, 'utf8'), FEATURES);
  try {
    mod.validate();
    // Function and local names kept: profiles and stack traces then name the kernel's functions.
    const { buffer } = mod.toBinary({ write_debug_names: true });
    const out = name.replace(/\.wat$/, '.wasm');
    writeFileSync(dir + out, buffer);
    console.log(`${name} → ${out} (${buffer.length} bytes)`);
  } finally {
    mod.destroy();
  }
}
