#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { runCheckCommand, runHashPasswordCommand, runServeCommand, runTokenCommand } from './commands.js';
import { runAuthCommand } from './auth-command.js';
import { runDemoCommand } from './demo/run-demo.js';
import { describeError } from './errors.js';

/** Thin: argv to commands. Each command's work lives in commands.ts or demo/. */

interface Command {
  summary: string;
  usage: string;
  /** Names of the positional arguments, all required ("ACCOUNT"); more are refused. */
  args?: readonly string[];
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<number>;
}

const configOption = { config: { type: 'string', short: 'c', default: 'config.yaml' } } as const;

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the proxy',
    usage: 'serve [-c config.yaml]',
    options: configOption,
    run: (v) => runServeCommand(String(v.config)),
  },
  check: {
    summary: 'check the config, every token, and a real upstream login per account',
    usage: 'check [-c config.yaml]',
    options: configOption,
    run: (v) => runCheckCommand(String(v.config)),
  },
  auth: {
    summary: 'sign ACCOUNT in interactively (device code or browser) and store its tokens',
    usage: 'auth ACCOUNT [-c config.yaml] [--method browser|device] [--port N]',
    args: ['ACCOUNT'],
    options: { ...configOption, method: { type: 'string' }, port: { type: 'string' } },
    run: (v, p) => {
      const method = v.method === undefined ? undefined : String(v.method);
      if (method !== undefined && method !== 'browser' && method !== 'device') throw new UsageError('--method must be browser or device');
      return runAuthCommand({ configPath: String(v.config), username: p[0], method, port: v.port === undefined ? undefined : portNumber('--port', v.port) });
    },
  },
  token: {
    summary: 'print a fresh access token for ACCOUNT (for passwordeval in msmtp, mutt, isync)',
    usage: 'token ACCOUNT [-c config.yaml]',
    args: ['ACCOUNT'],
    options: configOption,
    run: (v, p) => runTokenCommand(String(v.config), p[0]),
  },
  'hash-password': {
    summary: 'read a password (prompt or stdin) and print its scrypt hash for password_hash',
    usage: 'hash-password',
    options: {},
    run: () => runHashPasswordCommand(),
  },
  demo: {
    summary: 'run a self-contained demo: mock identity provider, demo IMAP, POP3 and SMTP servers and the proxy',
    usage: 'demo [--dir ./demo-data] [--port 1143] [--pop3-port 1110] [--smtp-port 1587] [--admin-port 8025]',
    options: {
      dir: { type: 'string', default: './demo-data' }, port: { type: 'string', default: '1143' }, 'pop3-port': { type: 'string', default: '1110' },
      'smtp-port': { type: 'string', default: '1587' },
      'admin-port': { type: 'string', default: '8025' },
    },
    run: (v) => runDemoCommand({
      dir: String(v.dir), port: portNumber('--port', v.port), pop3Port: portNumber('--pop3-port', v['pop3-port']),
      smtpPort: portNumber('--smtp-port', v['smtp-port']), adminPort: portNumber('--admin-port', v['admin-port']),
    }),
  },
};

/** A mistake in how the command was called: exit code 2 and the command's usage, as for an unknown command. */
class UsageError extends Error {}

function portNumber(option: string, value: string | boolean | undefined): number {
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d{1,5}$/.test(value) || port > 65535) throw new UsageError(`${option} must be a port number (0 picks a free one)`);
  return port;
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return `Usage: oauth-mail-proxy <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'oauth-mail-proxy <command> --help' for a command's options.\n`;
}

function commandHelp(c: Command): string {
  const opts = Object.entries(c.options).map(([k, o]) => {
    const short = 'short' in o && o.short ? `-${o.short}, ` : '    ';
    const def = 'default' in o && o.default !== undefined ? ` (default ${String(o.default)})` : '';
    return `  ${short}--${k}${def}`;
  });
  return `Usage: oauth-mail-proxy ${c.usage}\n\n${c.summary}\n${opts.length ? `\nOptions:\n${opts.join('\n')}\n` : ''}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write('oauth-mail-proxy 0.1.0\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`oauth-mail-proxy: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    checkPositionals(command, positionals);
    return await command.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    // parseArgs throws TypeErrors with a code (ERR_PARSE_ARGS_UNKNOWN_OPTION...) for what was typed.
    const typed = err instanceof UsageError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (!typed) throw err;
    process.stderr.write(`oauth-mail-proxy ${name}: ${(err as Error).message}\n\n${commandHelp(command)}`);
    return 2;
  }
}

function checkPositionals(command: Command, positionals: string[]): void {
  const names = command.args ?? [];
  const missing = names[positionals.length];
  if (missing) throw new UsageError(`missing ${missing}`);
  const extra = positionals[names.length];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`oauth-mail-proxy: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);
