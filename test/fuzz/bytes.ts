import fc from 'fast-check';

/**
 * Protocol-neutral arbitraries for fuzzing the pre-login dialogues: byte streams built from a
 * protocol's own command lines, mutated (NUL, 8-bit bytes, CR without LF, bare LF, cut,
 * repeated, flipped bits, long runs), and split at random byte boundaries so that every
 * reader is exercised with commands arriving in pieces.
 */

/** How many generated cases a property runs: base × FUZZ_SCALE (the soak suite raises it). */
export function runs(base: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** fast-check parameters shared by every fuzz property: a seed from the environment replays a failure. */
export function fuzzParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  return { numRuns, endOnFailure: true, ...(seed === undefined ? {} : { seed }) };
}

/** Bytes a hostile or broken client likes to send. */
const AWKWARD = [0x00, 0x0d, 0x0a, 0x20, 0x22, 0x5c, 0x7b, 0x7d, 0x28, 0x29, 0x2a, 0x2b, 0x3d, 0x7f, 0x80, 0xc3, 0xff];

export const awkwardByte: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...AWKWARD) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

/** Random bytes biased toward the ones that break parsers. */
export const awkwardBytes = (maxLength = 24): fc.Arbitrary<Buffer> =>
  fc.array(awkwardByte, { maxLength }).map((a) => Buffer.from(a));

type Mutation = (input: Buffer) => Buffer;

function at(input: Buffer, fraction: number): number {
  return Math.min(input.length, Math.floor(fraction * (input.length + 1)));
}

function splice(input: Buffer, index: number, remove: number, insert: Buffer): Buffer {
  return Buffer.concat([input.subarray(0, index), insert, input.subarray(Math.min(input.length, index + remove))]);
}

/** One mutation of a byte stream. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), awkwardBytes(8)).map(([f, bytes]): Mutation => (b) => splice(b, at(b, f), 0, bytes)),
  fc.double({ min: 0, max: 1, noNaN: true }).map((f): Mutation => (b) => b.subarray(0, at(b, f))),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 16 })).map(([f, n]): Mutation => (b) => splice(b, at(b, f), n, Buffer.alloc(0))),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 7 })).map(([f, bit]): Mutation => (b) => {
    const copy = Buffer.from(b);
    const i = Math.min(copy.length - 1, at(b, f));
    if (i >= 0) copy[i] = (copy[i] as number) ^ (1 << bit);
    return copy;
  }),
  // CRLF turned into a lone CR or a lone LF.
  fc.tuple(fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true })).map(([keepCr, f]): Mutation => (b) => {
    const crlf = b.indexOf('\r\n', at(b, f));
    return crlf === -1 ? b : splice(b, crlf, 2, Buffer.from(keepCr ? '\r' : '\n'));
  }),
  // A stretch of the stream repeated (pipelining, replays).
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 2, max: 4 })).map(([f, len, times]): Mutation => (b) => {
    const start = at(b, f);
    const piece = b.subarray(start, start + len);
    return splice(b, start, 0, Buffer.concat(Array.from({ length: times - 1 }, () => piece)));
  }),
  // A long run of one byte (up to a few times the pre-login line limit).
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), awkwardByte, fc.integer({ min: 100, max: 20_000 })).map(([f, byte, n]): Mutation => (b) => splice(b, at(b, f), 0, Buffer.alloc(n, byte))),
);

/** A stream with up to `max` mutations applied. */
export function mutated(stream: fc.Arbitrary<Buffer>, max = 3): fc.Arbitrary<Buffer> {
  return fc.tuple(stream, fc.array(mutation, { maxLength: max })).map(([bytes, ms]) => ms.reduce((b, m) => m(b), bytes));
}

/** Cuts `bytes` into chunks at random boundaries (every chunk non-empty). */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(previous, p));
    previous = p;
  }
  if (previous < bytes.length) chunks.push(bytes.subarray(previous));
  return chunks;
}

/** A byte stream and the chunks it arrives in. */
export interface ChunkedStream {
  bytes: Buffer;
  chunks: Buffer[];
}

export function chunked(stream: fc.Arbitrary<Buffer>, maxCuts = 12): fc.Arbitrary<ChunkedStream> {
  return fc.tuple(stream, fc.array(fc.nat(), { maxLength: maxCuts })).map(([bytes, cuts]) => {
    const chunks = splitAt(bytes, cuts);
    return { bytes, chunks, [fc.toStringMethod]: () => describeStream(bytes, chunks) };
  });
}

/** A counterexample as a reader can take it in: sizes, and the bytes escaped and cut short. */
export function describeStream(bytes: Buffer, chunks: readonly Buffer[]): string {
  const escaped = JSON.stringify(bytes.toString('latin1').replace(/(.)\1{15,}/gs, (run, c: string) => `<${run.length} x ${JSON.stringify(c)}>`));
  const text = escaped.length > 600 ? `${escaped.slice(0, 600)}...` : escaped;
  return `${bytes.length} bytes in ${chunks.length} chunks [${chunks.map((c) => c.length).join(',')}]: ${text} (base64 ${bytes.length <= 2048 ? bytes.toString('base64') : 'omitted'})`;
}

/** Lines joined with the ending a well-behaved client uses. */
export function crlfJoin(lines: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(lines.flatMap((l) => [typeof l === 'string' ? Buffer.from(l, 'latin1') : l, Buffer.from('\r\n')]));
}

/** Text that is awkward inside a quoted string or a literal: quotes, backslashes, 8-bit, spaces. */
export const awkwardText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 16 }),
  fc.string({ unit: fc.constantFrom('"', '\\', ' ', 'a', 'é', '\u00ff', '{', '}', '(', ')', '*', '%', '+', '='), maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
