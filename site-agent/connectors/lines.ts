/**
 * Line splitting for text streams (VCF, NDJSON), linear in the input: each chunk is scanned once,
 * and a line that spans many chunks is kept as a list of pieces joined once when it ends (joining
 * the growing rest to every new chunk and re-splitting it was quadratic: a 32 MB line took 20 s).
 * A line longer than `maxLineChars` is never materialised: its pieces are dropped as soon as the
 * limit is passed, the reader is told its line number and length, and it is emitted as an empty
 * line so line numbers stay right. (V8 strings stop at about 2^29 characters: a longer line used
 * to crash the agent with a RangeError.)
 */

/** Default limits: a VCF line of 256 Mi characters holds ~60 million genotypes; a FHIR resource of 64 MiB is already absurd. */
export const DEFAULT_MAX_VCF_LINE_CHARS = 256 * 1024 * 1024;
export const DEFAULT_MAX_NDJSON_LINE_CHARS = 64 * 1024 * 1024;

export type OnLongLine = (lineNo: number, chars: number) => void;

export class LineSplitter {
  private parts: string[] = [];
  private partChars = 0;
  /** The current line passed the limit: its text is being dropped. */
  private overlong = false;
  /** After a gap in the input: drop the text up to the next newline, uncounted. */
  private resyncing = false;
  /** Lines emitted so far (the next line is number `lines + 1`). */
  lines = 0;

  constructor(
    readonly maxLineChars: number,
    private readonly onLongLine: OnLongLine,
  ) {
    if (!(Number.isInteger(maxLineChars) && maxLineChars > 0))
      throw new RangeError(`maxLineChars must be a positive integer, got ${maxLineChars}`);
  }

  /** Splits `text` (the next piece of the stream) and appends the lines it completes to `out`. */
  push(text: string, out: string[]): void {
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) {
        if (from < text.length) this.addPiece(text, from, text.length);
        return;
      }
      if (this.resyncing) {
        this.resyncing = false;
        from = nl + 1;
        continue;
      }
      this.addPiece(text, from, nl);
      this.finishLine(out);
      from = nl + 1;
    }
  }

  /** The input has a hole: the line being read is dropped, and so is the text before the next newline. */
  resync(): void {
    this.parts = [];
    this.partChars = 0;
    this.overlong = false;
    this.resyncing = true;
  }

  /** Emits the last line when the stream does not end with a newline. */
  end(out: string[]): void {
    if (this.resyncing) return;
    if (this.partChars > 0 || this.overlong) this.finishLine(out);
  }

  private addPiece(text: string, from: number, to: number): void {
    if (this.resyncing || to <= from) return;
    this.partChars += to - from;
    if (this.overlong) return;
    if (this.partChars > this.maxLineChars) {
      this.overlong = true;
      this.parts = [];
      return;
    }
    this.parts.push(from === 0 && to === text.length ? text : text.slice(from, to));
  }

  private finishLine(out: string[]): void {
    this.lines++;
    if (this.overlong) {
      this.onLongLine(this.lines, this.partChars);
      out.push('');
    } else {
      let line = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
      if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
      out.push(line);
    }
    this.parts = [];
    this.partChars = 0;
    this.overlong = false;
  }
}

/** Lines of a byte stream decoded as UTF-8, in batches (one per chunk that completes a line). */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array>,
  maxLineChars: number,
  onLongLine: OnLongLine,
): AsyncGenerator<string[]> {
  const decoder = new TextDecoder('utf-8');
  const splitter = new LineSplitter(maxLineChars, onLongLine);
  for await (const chunk of chunks) {
    const out: string[] = [];
    splitter.push(decoder.decode(chunk, { stream: true }), out);
    if (out.length) yield out;
  }
  const out: string[] = [];
  splitter.push(decoder.decode(), out);
  splitter.end(out);
  if (out.length) yield out;
}
