import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value (password, access token, refresh token, client secret). It prints,
 * serialises and inspects as "[redacted]"; only `reveal()` gives the value, so every
 * place that needs the real bytes is easy to find.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export function secret(value: string): Secret {
  return new Secret(value);
}
