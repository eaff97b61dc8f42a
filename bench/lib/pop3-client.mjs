// A minimal POP3 client for measuring (RFC 1939, RFC 5034 AUTH): multi-line bodies are
// scanned for their CRLF.CRLF end and counted, never decoded.
import { LineSocket, openSocket, waitForLine } from './wire.mjs';

export class RawPop3 {
  constructor(socket) {
    /** @type {Array<(line: string) => boolean>} */
    this.waiters = [];
    this.wire = new LineSocket(socket, (line) => {
      for (const waiter of this.waiters) if (waiter(line)) return;
    });
  }

  /** @param {{ port: number, tls?: boolean, ca?: string | Buffer }} target */
  static async connect(target) {
    const client = new RawPop3(await openSocket(target));
    const greeting = await waitForLine(client.wire, client.waiters, (l) => l, 'the greeting');
    if (!greeting.startsWith('+OK')) throw new Error(`unexpected POP3 greeting: ${greeting.slice(0, 120)}`);
    return client;
  }

  /** Sends a command; resolves with its status line, rejects on -ERR. */
  async command(command) {
    const reply = waitForLine(this.wire, this.waiters, (l) => l, `the reply to ${command.split(' ')[0]}`);
    this.wire.write(`${command}\r\n`);
    const line = await reply;
    if (!line.startsWith('+')) throw new Error(`${command.split(' ')[0]} failed: ${line.slice(0, 160)}`);
    return line;
  }

  async login(user, password) {
    await this.command(`USER ${user}`);
    await this.command(`PASS ${password}`);
  }

  /**
   * AUTH XOAUTH2 in two steps (RFC 5034 section 4: the response after the server's "+ "), the
   * form every server takes; Microsoft 365 takes no other.
   */
  async authenticateXOAuth2(user, token) {
    const payload = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    const go = await this.command('AUTH XOAUTH2');
    if (!go.startsWith('+ ') && go !== '+') throw new Error(`AUTH XOAUTH2: unexpected ${go.slice(0, 80)}`);
    return this.command(payload);
  }

  /** RETR; resolves with the bytes of the multi-line body (terminator included). */
  async retr(number) {
    const before = this.wire.bodyBytes;
    const ended = new Promise((resolve, reject) => {
      const fail = (err) => reject(err);
      this.wire.onFail.add(fail);
      const status = waitForLine(this.wire, this.waiters, (line) => {
        if (!line.startsWith('+OK')) throw new Error(`RETR failed: ${line.slice(0, 160)}`);
        this.wire.scanToDotLine(() => {
          this.wire.onFail.delete(fail);
          resolve(undefined);
        });
        return true;
      }, 'the reply to RETR');
      status.catch(reject);
    });
    this.wire.write(`RETR ${number}\r\n`);
    await ended;
    return this.wire.bodyBytes - before;
  }

  /** Number and size of the largest message (LIST). */
  async largestMessage() {
    const lines = [];
    const done = waitForLine(this.wire, this.waiters, (line) => {
      if (line === '.') return true;
      if (line.startsWith('-ERR')) throw new Error(`LIST failed: ${line}`);
      lines.push(line);
      return undefined;
    }, 'the end of LIST');
    this.wire.write('LIST\r\n');
    await done;
    let best = { number: 0, size: -1 };
    for (const line of lines.slice(1)) {
      const [n, size] = line.split(' ').map(Number);
      if (size > best.size) best = { number: n, size };
    }
    if (best.number === 0) throw new Error('the maildrop is empty');
    return best;
  }

  async quit() {
    await this.command('QUIT');
    this.wire.socket.end();
    await this.wire.closedPromise;
  }

  destroy() {
    this.wire.socket.destroy();
  }
}
