import type { SecureContext } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerConfig } from '../../src/config/schema.js';
import { chunked, fuzzParams, runs } from './bytes.js';
import { flood } from './flood.js';
import { checkTranscript, startSessionRig, type EndMode, type FuzzTarget, type SessionRig } from './session-rig.js';

/**
 * The session-level fuzz suite, the same for every protocol: the real connection handler over
 * loopback sockets (session-rig.ts) fed generated streams in random pieces, a silent client,
 * and floods with the memory they cost. Each protocol's test file calls this with its grammar.
 */

/** Generous: CI machines are slow and shared; the case counts, not the clock, bound the work. */
export const PROPERTY_TIMEOUT_MS = 300_000;
const MB = 1024 * 1024;

export interface FloodCase {
  name: string;
  prefix: Buffer;
  unit: Buffer;
  /** false: a client that never reads. */
  read: boolean;
  /** Bytes that must have gone in for the case to prove anything. */
  minSent: number;
}

export interface SessionSuiteOptions {
  target: FuzzTarget;
  stream: (maxCommands: number, maxMutations: number) => fc.Arbitrary<Buffer>;
  /** Cases of the main property (before FUZZ_SCALE). */
  cases: number;
  /** Cases on a listener that requires STARTTLS first (its handshake fed garbage). */
  tlsCases: number;
  tlsContext: () => SecureContext;
  floods: FloodCase[];
  /** The first bytes every client sees (greeting). */
  greeting: RegExp;
  listener?: Partial<ListenerConfig>;
  /**
   * Sessions run at once in each property run (default 1). smtp-server waits 100 ms before its
   * greeting (to catch clients that talk first), so SMTP runs its cases in batches.
   */
  batch?: number;
}

export function describeSessionFuzz(o: SessionSuiteOptions): void {
  const name = o.target.protocol.toUpperCase();
  const batch = o.batch ?? 1;
  /** `batch` generated cases per property run, each one a session of its own. */
  const batchOf = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(arb, { minLength: batch, maxLength: batch });
  describe(`${name} pre-login session under fuzz (real handler, loopback sockets)`, () => {
    let rig: SessionRig;
    /** Floods take their time (full collections while sampling memory): longer timeouts. */
    let floodRig: SessionRig;
    beforeAll(async () => {
      rig = await startSessionRig(o.target, { listener: { idle_timeout: 0.15, login_timeout: 2, ...o.listener } });
      floodRig = await startSessionRig(o.target, { listener: { idle_timeout: 2, login_timeout: 2, ...o.listener } });
    });
    afterAll(async () => {
      await rig.close();
      await floodRig.close();
    });
    const endMode = fc.constantFrom<EndMode>('end', 'end', 'end', 'destroy');

    it('never fails, answers or closes in time, and reaches the mail server only after the right password', async () => {
      let rightLogins = 0;
      await fc.assert(
        fc.asyncProperty(batchOf(fc.tuple(chunked(o.stream(6, 3), 10), endMode)), async (cases) => {
          const transcripts = await Promise.all(cases.map(([{ chunks }, end]) => rig.runCase(chunks, end, 3000)));
          transcripts.forEach((t, i) => expect(checkTranscript(t, o.target, cases[i]![1])).toBeUndefined());
          rightLogins += transcripts.reduce((n, t) => n + t.authCalls.filter((c) => c.ok).length, 0);
        }),
        fuzzParams(Math.ceil(runs(o.cases) / batch)),
      );
      // The grammar must reach the interesting path too: right logins that go on to the server.
      // (about one case in ten to twenty logs in; one in fifty is the floor)
      expect(rightLogins).toBeGreaterThan(runs(o.cases) / 50);
    }, PROPERTY_TIMEOUT_MS);

    it('says goodbye to a client that falls silent, within the idle timeout', async () => {
      await fc.assert(
        fc.asyncProperty(batchOf(chunked(o.stream(3, 2), 4)), async (cases) => {
          const transcripts = await Promise.all(cases.map(({ chunks }) => rig.runCase(chunks, 'stay', rig.listener.idle_timeout * 1000 + 2000)));
          for (const t of transcripts) expect(checkTranscript(t, o.target, 'stay')).toBeUndefined();
        }),
        fuzzParams(Math.ceil(runs(30) / batch)),
      );
    }, PROPERTY_TIMEOUT_MS);

    it.each(o.floods.map((f) => [f.name, f] as const))('keeps memory bounded when a client sends %s', async (_name, f) => {
      // Warm-up, the same flood for a second: code compiled and heap grown on a first run are not a leak.
      if (f.read) await flood(floodRig.port, f.prefix, f.unit, 64 * MB, { read: true, timeoutMs: 1000 });
      await floodRig.ambient.settled();
      const result = await flood(floodRig.port, f.prefix, f.unit, 64 * MB, { read: f.read, timeoutMs: 3000, keepOpen: true });
      // The session must end by itself (login timeout, then a bounded goodbye and linger), even
      // while the client holds the connection open and reads nothing.
      const bound = (floodRig.listener.login_timeout + 6) * 1000;
      const ended = await Promise.race([floodRig.ambient.settled().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), bound))]);
      result.socket.destroy();
      expect(ended).toBe(true);
      // Megabytes must have gone in, or the case proved nothing; a proxy that kept them would have grown by as much.
      expect(result.sent).toBeGreaterThan(f.minSent);
      // Collector noise is a few megabytes; a proxy that kept what it read would grow by all of it.
      expect(result.peakGrowthBytes, `grew ${result.peakGrowthBytes} bytes after taking ${result.sent}`).toBeLessThan(8 * MB + result.sent / 4);
      expect(floodRig.ambient.tokenCalls()).toEqual([]);
      if (f.read) expect(result.reply).toMatch(o.greeting);
    }, PROPERTY_TIMEOUT_MS);
  });

  describe(`${name} pre-login session under fuzz on a STARTTLS-first listener`, () => {
    let rig: SessionRig;
    beforeAll(async () => {
      rig = await startSessionRig(o.target, { listener: { tls: 'starttls', idle_timeout: 0.15, login_timeout: 2, ...o.listener }, tlsContext: o.tlsContext() });
    });
    afterAll(async () => {
      await rig.close();
    });

    it('refuses passwords before TLS and survives garbage where a TLS handshake should be', async () => {
      await fc.assert(
        fc.asyncProperty(batchOf(chunked(o.stream(5, 3), 8)), async (cases) => {
          const transcripts = await Promise.all(cases.map(({ chunks }) => rig.runCase(chunks, 'end', 3000)));
          for (const t of transcripts) {
            expect(checkTranscript(t, o.target, 'end')).toBeUndefined();
            // Nothing that arrives in plaintext can be a login on this listener.
            expect(t.authCalls).toEqual([]);
          }
        }),
        fuzzParams(Math.ceil(runs(o.tlsCases) / batch)),
      );
    }, PROPERTY_TIMEOUT_MS);
  });
}

/**
 * Floods that every line-based protocol should survive. Some protocols hang up at once, some
 * skip an over-long line and read on until the login timeout; either way a few megabytes are
 * more than any buffer of ours may hold.
 */
export function commonFloods(): FloodCase[] {
  return [
    { name: 'an endless line', prefix: Buffer.alloc(0), unit: Buffer.alloc(64 * 1024, 'A'), read: true, minSent: 2 * MB },
    {
      name: 'endless 8-bit bytes and NULs', prefix: Buffer.alloc(0),
      unit: Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 131) % 256)), read: true, minSent: 2 * MB,
    },
  ];
}
