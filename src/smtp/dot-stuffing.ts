const LF = 0x0a;
const DOT = 0x2e;
const DOT_BYTE = Buffer.from('.');

/**
 * SMTP transparency (RFC 5321 section 4.5.2), applied while a message streams upstream: a line
 * that starts with "." gets a second one. smtp-server hands us the message with its stuffing
 * removed, and it unstuffs a dot after any LF, so we stuff after every LF too: the exact inverse,
 * and a bare LF followed by "." can never end the message early at a lenient server
 * (SMTP smuggling). State carries across chunks, so a line may start in the next chunk.
 */
export class DotStuffer {
  #atLineStart = true;

  /** True when the bytes so far end with LF (or nothing was written): the end marker may follow. */
  get atLineStart(): boolean {
    return this.#atLineStart;
  }

  /** The chunk with every line-initial dot doubled; the same Buffer when there is none. */
  stuff(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    if (this.#atLineStart && chunk[0] === DOT) {
      parts.push(DOT_BYTE);
    }
    for (let lf = chunk.indexOf(LF); lf !== -1 && lf + 1 < chunk.length; lf = chunk.indexOf(LF, lf + 1)) {
      if (chunk[lf + 1] !== DOT) continue;
      parts.push(chunk.subarray(from, lf + 1), DOT_BYTE);
      from = lf + 1;
    }
    this.#atLineStart = chunk[chunk.length - 1] === LF;
    if (parts.length === 0) return chunk;
    parts.push(chunk.subarray(from));
    return Buffer.concat(parts);
  }
}
