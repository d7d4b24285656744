// The package ships JavaScript only; this is the one entry point the connector uses.
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    /** Decodes a lossless JPEG codestream; returns its samples (8-bit or 16-bit per `numBytes`). */
    decode(buffer: ArrayBufferLike, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
  }
}
