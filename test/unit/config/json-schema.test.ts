import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../../src/config/json-schema.js';

describe('config.schema.json', () => {
  it('is current: regenerate it with `npm run schema` after changing src/config/schema.ts', () => {
    const committed = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../../config.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('lists the *_file indirections beside the secrets they fill', () => {
    const text = JSON.stringify(configJsonSchema());
    for (const key of ['password_file', 'refresh_token_file', 'access_token_file', 'client_secret_file']) expect(text).toContain(`"${key}"`);
  });
});
