import { scrypt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkScryptHash, hashPassword, parseScryptHash, scryptHashProblem, verifyScryptHash } from '../../../src/accounts/password.js';
import { Secret } from '../../../src/secret.js';

const SALT = 'DHInEo6C6J21o8lj2WGCeg==';
const KEY = 'O5l3KVZSiuui8S6no3OBwH0yf+PbVi+F1YEgOMAfU+I=';
const hash = (params: string, salt = SALT, key = KEY): string => `scrypt$${params}$${salt}$${key}`;

describe('scrypt hash validation', () => {
  it('accepts what hash-password prints, at its default cost', async () => {
    const printed = await hashPassword(new Secret('pw'));
    expect(scryptHashProblem(printed)).toBeUndefined();
    expect(checkScryptHash(printed)).toMatchObject({ logN: 15, r: 8, p: 1 });
  });

  it.each([
    ['ln=40,r=8,p=1', /ln=40 is out of range \(10-20\)/],
    ['ln=9,r=8,p=1', /ln=9 is out of range/],
    ['ln=15,r=0,p=1', /r=0 is out of range/],
    ['ln=15,r=99,p=1', /r=99 is out of range/],
    ['ln=15,r=8,p=0', /p=0 is out of range/],
    ['ln=15,r=8,p=999', /p=999 is out of range/],
    ['ln=16,r=1,p=1', /ln=16 needs r of at least 2/],
    ['ln=20,r=8,p=1', /ln=20,r=8 needs more than 256 MiB per login/],
  ])('refuses the parameters %s', (params, expected) => {
    expect(scryptHashProblem(hash(params))).toMatch(expected);
    expect(parseScryptHash(hash(params))).toBeUndefined();
  });

  it('refuses salts and keys that are not strict base64 or of no sane length', () => {
    expect(scryptHashProblem(hash('ln=15,r=8,p=1', 'REPLACE', 'ME'))).toBe('salt is not base64');
    expect(scryptHashProblem(hash('ln=15,r=8,p=1', SALT, 'a b'))).toBe('key is not base64');
    expect(scryptHashProblem(hash('ln=15,r=8,p=1', 'c2FsdA=='))).toBe('salt is 4 bytes (expected 8-64)');
    expect(scryptHashProblem(hash('ln=15,r=8,p=1', SALT, 'a2V5'))).toBe('key is 3 bytes (expected 16-64)');
    expect(scryptHashProblem(hash('ln=15,r=8,p=1', SALT, Buffer.alloc(65).toString('base64')))).toBe('key is 65 bytes (expected 16-64)');
    expect(scryptHashProblem(`${hash('ln=15,r=8,p=1')}$extra`)).toMatch(/expected a hash printed by/);
  });

  it('refuses ln=16 with r=1 because node:crypto itself would, at every login', async () => {
    const options = { N: 2 ** 16, r: 1, p: 1, maxmem: 2 ** 30 };
    await expect(new Promise((resolve, reject) => scrypt('pw', 'salt', 16, options, (err, key) => (err ? reject(err) : resolve(key)))))
      .rejects.toMatchObject({ code: 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS' });
  });

  it('verifies a hash at the edge of the accepted range', async () => {
    // ln=15,r=1 is the costliest N that r=1 allows; the accepted set must be one node can run.
    const edge = await hashPassword(new Secret('pw'), 15);
    const r1 = edge.replace('r=8', 'r=1');
    expect(scryptHashProblem(r1)).toBeUndefined();
    await expect(verifyScryptHash(r1, new Secret('pw'))).resolves.toBe(false);
  });
});
