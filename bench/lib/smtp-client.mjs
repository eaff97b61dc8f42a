// A minimal SMTP submission client for measuring (RFC 5321, RFC 4954 AUTH, RFC 3207
// STARTTLS): the 10 MB message is written as one Buffer; only reply lines are parsed.
import { connect as tlsConnect } from 'node:tls';
import { LineSocket, openSocket, waitForLine } from './wire.mjs';

export class RawSmtp {
  constructor(socket) {
    this.#attach(socket);
  }

  #attach(socket) {
    /** @type {Array<(line: string) => boolean>} */
    this.waiters = [];
    this.wire = new LineSocket(socket, (line) => {
      for (const waiter of this.waiters) if (waiter(line)) return;
    });
  }

  /**
   * Connects, reads the greeting, says EHLO, and upgrades with STARTTLS when `starttls` is set.
   * @param {{ port: number, tls?: boolean, starttls?: boolean, ca?: string | Buffer }} target
   */
  static async connect(target) {
    const client = new RawSmtp(await openSocket({ ...target, tls: target.tls && !target.starttls }));
    await client.reply(220, 'the greeting');
    await client.command('EHLO bench.localhost', 250);
    if (target.starttls) {
      await client.command('STARTTLS', 220);
      const plain = client.wire.socket;
      const secure = await new Promise((resolve, reject) => {
        const s = tlsConnect({ socket: plain, ca: target.ca, servername: 'localhost', minVersion: 'TLSv1.2' }, () => resolve(s));
        s.once('error', reject);
      });
      client.#attach(secure);
      await client.command('EHLO bench.localhost', 250);
    }
    return client;
  }

  /** Waits for a complete reply (its last line is "ddd text"); rejects unless its code is `expect`. */
  async reply(expect, what) {
    const line = await waitForLine(this.wire, this.waiters, (l) => (/^\d{3}(?: |$)/.test(l) ? l : undefined), what);
    if (Number(line.slice(0, 3)) !== expect) throw new Error(`${what}: expected ${expect}, got: ${line.slice(0, 160)}`);
    return line;
  }

  command(command, expect) {
    const reply = this.reply(expect, `the reply to ${command.split(' ')[0]}`);
    this.wire.write(`${command}\r\n`);
    return reply;
  }

  /** AUTH PLAIN with an initial response (RFC 4616), as a printer or old client would log in. */
  login(user, password) {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`, 235);
  }

  /** AUTH XOAUTH2 with an initial response, as Gmail documents it. */
  authenticateXOAuth2(user, token) {
    const payload = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    return this.command(`AUTH XOAUTH2 ${payload}`, 235);
  }

  /**
   * One message: MAIL, RCPT, DATA, the bytes (already dot-stuffed, ending in CRLF), ".".
   * Resolves with the bytes written after DATA's 354.
   * @param {Buffer} message
   */
  async send(from, to, message) {
    await this.command(`MAIL FROM:<${from}> SIZE=${message.length}`, 250);
    await this.command(`RCPT TO:<${to}>`, 250);
    await this.command('DATA', 354);
    const accepted = this.reply(250, 'the reply to the message');
    this.wire.socket.write(message);
    this.wire.write('.\r\n');
    await accepted;
    return message.length + 3;
  }

  async quit() {
    await this.command('QUIT', 221);
    this.wire.socket.end();
    await this.wire.closedPromise;
  }

  destroy() {
    this.wire.socket.destroy();
  }
}
