import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isProxyError } from '../../../src/errors.js';
import { decodeBase64Strict } from '../../../src/sasl/base64.js';
import { decodeLoginPassword, decodeLoginUsername } from '../../../src/sasl/login.js';
import { decodePlain, encodePlain } from '../../../src/sasl/plain.js';
import { Secret } from '../../../src/secret.js';
import { awkwardBytes, fuzzParams, runs } from '../../fuzz/bytes.js';

/**
 * The SASL decoders every protocol's pre-login dialogue shares (PLAIN, LOGIN, strict base64):
 * on any input they return or throw ProxyError `bad_input`, nothing else; what a client
 * encodes correctly comes back unchanged, and nothing that decodes differently is accepted.
 */

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  awkwardBytes(60).map((b) => b.toString('base64')),
  awkwardBytes(60).map((b) => b.toString('base64').slice(0, -1)),
  awkwardBytes(60).map((b) => b.toString('latin1')),
);

function onlyBadInput(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(isProxyError(err, 'bad_input')).toBe(true);
  }
}

describe('SASL decoders under fuzz', () => {
  it('throw nothing but bad_input on any text', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        onlyBadInput(() => decodePlain(text));
        onlyBadInput(() => decodeLoginUsername(text));
        onlyBadInput(() => decodeLoginPassword(text));
        onlyBadInput(() => {
          // Strict: whatever it accepts is canonical base64 of what it returns.
          expect(decodeBase64Strict(text).toString('base64')).toBe(text);
        });
      }),
      fuzzParams(runs(4000)),
    );
  });

  it('PLAIN gives back exactly the user name and password that were encoded', () => {
    const part = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(part, part, fc.constantFrom('', 'authz'), (user, password, authzid) => {
        const decoded = decodePlain(encodePlain(user, new Secret(password), authzid));
        expect([decoded.authzid, decoded.authcid, decoded.password.reveal()]).toEqual([authzid, user, password]);
      }),
      fuzzParams(runs(1000)),
    );
  });
});
