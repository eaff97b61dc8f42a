// A minimal IMAP client for measuring (RFC 3501): numbered tags, one command at a time,
// literals in responses skipped and counted without decoding. Not imapflow: a full client
// would spend more CPU parsing 10 MB literals than the proxy spends relaying them.
import { LineSocket, openSocket, waitForLine } from './wire.mjs';

export class RawImap {
  /** @param {import('node:net').Socket} socket */
  constructor(socket) {
    /** @type {Array<(line: string) => boolean>} */
    this.waiters = [];
    this.nextTag = 1;
    this.wire = new LineSocket(socket, (line) => this.#line(line));
  }

  /**
   * Connects and waits for the greeting.
   * @param {{ port: number, tls?: boolean, ca?: string | Buffer }} target
   */
  static async connect(target) {
    const client = new RawImap(await openSocket(target));
    const greeting = waitForLine(client.wire, client.waiters, (l) => (l.startsWith('* ') ? l : undefined), 'the greeting');
    const line = await greeting;
    if (!/^\* (OK|PREAUTH)\b/i.test(line)) throw new Error(`unexpected IMAP greeting: ${line.slice(0, 120)}`);
    return client;
  }

  #line(line) {
    const literal = /\{(\d+)\+?\}$/.exec(line);
    if (literal) this.wire.skipBytes(Number(literal[1]));
    for (const waiter of this.waiters) if (waiter(line)) return;
  }

  /**
   * Sends a command and resolves with its tagged reply line; rejects unless it is OK.
   * `untagged`, when given, receives every untagged line before it.
   * @param {string} command
   * @param {string[]} [untagged]
   */
  async command(command, untagged) {
    const tag = `b${this.nextTag++}`;
    const reply = waitForLine(this.wire, this.waiters, (line) => {
      if (line.startsWith(`${tag} `)) return line;
      if (untagged && line.startsWith('* ')) untagged.push(line);
      return undefined;
    }, `the reply to ${command.split(' ')[0]}`);
    this.wire.write(`${tag} ${command}\r\n`);
    const line = await reply;
    if (!line.startsWith(`${tag} OK`)) throw new Error(`${command.split(' ', 2).join(' ')} failed: ${line.slice(0, 160)}`);
    return line;
  }

  /** AUTHENTICATE XOAUTH2 with SASL-IR (RFC 4959), as a direct client of Gmail would. */
  authenticateXOAuth2(user, token) {
    const payload = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    return this.command(`AUTHENTICATE XOAUTH2 ${payload}`);
  }

  /** LOGIN with quoted strings (RFC 3501 section 9 quoted: `"` and `\` escaped). */
  login(user, password) {
    const quote = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    return this.command(`LOGIN ${quote(user)} ${quote(password)}`);
  }

  /** IDLE (RFC 2177): resolves at the "+" continuation; `done()` ends it and awaits the OK. */
  async idle() {
    const tag = `b${this.nextTag++}`;
    const ready = waitForLine(this.wire, this.waiters, (line) => {
      if (line.startsWith('+')) return true;
      if (line.startsWith(`${tag} `)) throw new Error(`IDLE refused: ${line}`);
      return undefined;
    }, 'the IDLE continuation');
    this.wire.write(`${tag} IDLE\r\n`);
    await ready;
    return {
      done: async () => {
        const end = waitForLine(this.wire, this.waiters, (line) => (line.startsWith(`${tag} `) ? line : undefined), 'the end of IDLE');
        this.wire.write('DONE\r\n');
        const line = await end;
        if (!line.startsWith(`${tag} OK`)) throw new Error(`IDLE ended with: ${line}`);
      },
    };
  }

  /** FETCH of a whole message (BODY.PEEK[]: no \Seen change); resolves with the literal's size. */
  async fetchBody(sequence) {
    const before = this.wire.bodyBytes;
    await this.command(`FETCH ${sequence} BODY.PEEK[]`);
    return this.wire.bodyBytes - before;
  }

  /** Sequence number and size of the largest message in the selected mailbox. */
  async largestMessage() {
    const lines = [];
    await this.command('FETCH 1:* RFC822.SIZE', lines);
    let best = { sequence: 0, size: -1 };
    for (const line of lines) {
      const m = /^\* (\d+) FETCH \(.*RFC822\.SIZE (\d+)/i.exec(line);
      if (m && Number(m[2]) > best.size) best = { sequence: Number(m[1]), size: Number(m[2]) };
    }
    if (best.sequence === 0) throw new Error('the mailbox is empty');
    return best;
  }

  /** LOGOUT; resolves at its tagged OK (what a user waits for). Then call `closed()`. */
  logout() {
    return this.command('LOGOUT');
  }

  /** Ends our side and waits until the connection is fully closed. */
  async closed() {
    this.wire.socket.end();
    await this.wire.closedPromise;
  }

  destroy() {
    this.wire.socket.destroy();
  }
}
