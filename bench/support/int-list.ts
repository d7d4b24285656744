/** A comma-separated list of positive integers from a bench flag (`--seeds 1,2,3`); a bad entry names the flag. */
export function positiveIntegers(flagName: string, value: string): number[] {
  return value.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flagName}: ${JSON.stringify(s)} is not a positive integer`);
    return n;
  });
}
