// Recognises DICOM data sets stored without the Part 10 preamble and "DICM" prefix: a file
// that starts directly with its File Meta group (0002,xxxx), or with a bare data set (ACR-NEMA
// style, or exported without meta) whose first element is of group 0008.

const VRS = new Set('AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '));

export type Sniffed =
  /** File Meta at byte 0: parse as Part 10 once the missing 132 bytes are put back. */
  | { kind: 'meta'; bytes: Uint8Array }
  /** A bare data set in this transfer syntax (implicit or explicit VR little endian). */
  | { kind: 'raw'; transferSyntax: string };

/** What the first bytes of a file show, or undefined when they are not a DICOM element. */
export function sniffDataSet(bytes: Uint8Array): Sniffed | undefined {
  if (bytes.length < 8) return undefined;
  const group = bytes[0]! | (bytes[1]! << 8);
  const vr = String.fromCharCode(bytes[4]!, bytes[5]!);
  const explicit = VRS.has(vr);
  if (group === 0x0002 && explicit) {
    const padded = new Uint8Array(132 + bytes.length);
    padded.set([0x44, 0x49, 0x43, 0x4d], 128);
    padded.set(bytes, 132);
    return { kind: 'meta', bytes: padded };
  }
  if (group !== 0x0008) return undefined;
  if (explicit) return { kind: 'raw', transferSyntax: '1.2.840.10008.1.2.1' };
  // Implicit VR: a 32-bit length that fits in the file.
  const length = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
  return length <= bytes.length - 8 ? { kind: 'raw', transferSyntax: '1.2.840.10008.1.2' } : undefined;
}
