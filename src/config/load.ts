import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument, visit, type Document, type YAMLError } from 'yaml';
import { ProxyError } from '../errors.js';
import { resolveConfig, type Config, type ConfigIssue } from './resolve.js';
import { configSchema } from './schema.js';

/** `password_file: x` reads file x into `password`; likewise for the other secrets. */
export const SECRET_FILE_KEYS = ['password_file', 'refresh_token_file', 'access_token_file', 'client_secret_file', 'bearer_token_file'] as const;
/** Keys holding paths, resolved against the config file's folder. */
const PATH_KEYS = new Set(['cert_file', 'key_file', 'ca_file', 'path']);

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads, interpolates, validates and resolves a config file. Every problem is reported at
 * once, each with its key path and line: `config.yaml:12 accounts[0].provider: unknown provider`.
 */
export function loadConfigFile(path: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProxyError('config_invalid', `cannot read config file ${path}`, { cause: err });
  }
  return parseConfig(text, { ...options, path });
}

export function parseConfig(text: string, options: LoadOptions & { path?: string } = {}): Config {
  const file = options.path ?? 'config';
  const baseDir = options.path ? dirname(resolve(options.path)) : process.cwd();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  checkYaml(doc, file, lineCounter);
  const issues: ConfigIssue[] = [];
  interpolateEnv(doc, options.env ?? process.env, issues);
  inlineSecretFiles(doc, baseDir, issues);
  resolvePaths(doc, baseDir);
  const lineOf = (p: (string | number)[]): string => {
    const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
    const parentNode = p.length > 0 ? (doc.getIn(p.slice(0, -1), true) as { range?: [number, number, number] } | undefined) : undefined;
    const offset = node?.range?.[0] ?? parentNode?.range?.[0];
    return offset === undefined ? '' : String(lineCounter.linePos(offset).line);
  };
  const report = (list: ConfigIssue[]): never => {
    const lines = list.map((i) => `${file}:${lineOf(i.path)} ${formatPath(i.path)}: ${i.message}`);
    throw new ProxyError('config_invalid', `invalid config:\n  ${lines.join('\n  ')}`);
  };
  if (issues.length > 0) report(issues);
  const parsed = configSchema.safeParse(toJS(doc, file, lineCounter) ?? {});
  if (!parsed.success) {
    report(parsed.error.issues.map((i) => ({ path: i.path.filter((k): k is string | number => typeof k !== 'symbol'), message: i.message })));
  }
  const { config, issues: resolveIssues } = resolveConfig(parsed.data!);
  if (resolveIssues.length > 0) report(resolveIssues);
  // Defaults are relative too: the store lives beside the config file, not the working folder.
  config.tokenStore.path = resolve(baseDir, config.tokenStore.path);
  config.tokenStore.keyFile = resolve(baseDir, config.tokenStore.keyFile);
  return config;
}

/**
 * yaml's errors, its warnings (an unknown tag or directive would silently change a value), and
 * aliases without an anchor before them, which yaml only throws at toJS, without a line. Each is
 * reported as `config.yaml:3 listeners[0].listen: ... at line 3, column 13`.
 */
function checkYaml(doc: Document, file: string, lineCounter: LineCounter): void {
  const lines = [...doc.errors, ...doc.warnings].map((e) => yamlProblem(file, e));
  visit(doc, {
    Alias(_key, node, path) {
      if (node.resolve(doc)) return;
      const { line, col } = lineCounter.linePos(node.range?.[0] ?? 0);
      const where = formatPath(keyPath(path, node));
      lines.push(`${file}:${line} ${where}: unresolved alias *${node.source} at line ${line}, column ${col}: no anchor &${node.source} before it`
        + ' (an unquoted value starting with * is an alias: quote it)');
    },
  });
  if (lines.length > 0) throw new ProxyError('config_invalid', `invalid YAML:\n  ${lines.join('\n  ')}`);
}

function yamlProblem(file: string, e: YAMLError): string {
  const [start] = e.linePos ?? [];
  const message = e.message.split('\n')[0] ?? e.code;
  // prettyErrors puts "at line N, column M" in the message; without a position, say so.
  return `${file}:${start?.line ?? '?'} ${start ? message : `${message} (at an unknown line)`}`;
}

/** doc.toJS throws for alias trouble checkYaml cannot see ahead (an alias bomb); never let it escape bare. */
function toJS(doc: Document, file: string, lineCounter: LineCounter): unknown {
  try {
    return doc.toJS();
  } catch (err) {
    let first: number | undefined;
    visit(doc, { Alias: (_key, node) => void (first ??= node.range?.[0]) });
    const line = first === undefined ? '?' : lineCounter.linePos(first).line;
    throw new ProxyError('config_invalid', `invalid YAML:\n  ${file}:${line} ${(err as Error).message} (the first alias is at line ${line})`, { cause: err });
  }
}

export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${k}` : k;
  return out || '(top level)';
}

/** Replaces `${NAME}` in every string scalar with the environment variable; `$${` is a literal `${`. */
function interpolateEnv(doc: Document, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): void {
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, name: string) => {
        if (match.startsWith('$$')) return match.slice(1);
        const value = env[name];
        if (value === undefined) {
          issues.push({ path: keyPath(path, node), message: `environment variable ${name} is not set` });
          return '';
        }
        return value;
      });
    },
  });
}

/** Walks the collection path yaml's visitor gives into a key path for messages. */
function keyPath(path: readonly unknown[], node: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  const chain = [...path, node];
  for (let i = 1; i < chain.length; i++) {
    const parent = chain[i - 1] as { items?: unknown[] };
    const child = chain[i];
    if (!parent || !Array.isArray(parent.items)) continue;
    const idx = parent.items.indexOf(child);
    if (idx >= 0 && !isMap(parent)) out.push(idx);
    else if (isPair(child) && isScalar(child.key)) out.push(String(child.key.value));
  }
  return out;
}

function isPair(x: unknown): x is { key: unknown; value: unknown } {
  return typeof x === 'object' && x !== null && 'key' in x && 'value' in x;
}

function inlineSecretFiles(doc: Document, baseDir: string, issues: ConfigIssue[]): void {
  visit(doc, {
    Map(_key, map, path) {
      for (const fileKey of SECRET_FILE_KEYS) {
        const fileName = map.get(fileKey);
        if (fileName === undefined) continue;
        const where = [...keyPath(path, map), fileKey];
        const target = fileKey.slice(0, -'_file'.length);
        if (map.has(target)) {
          issues.push({ path: where, message: `set either ${target} or ${fileKey}, not both` });
          continue;
        }
        if (typeof fileName !== 'string') {
          issues.push({ path: where, message: 'expected a file path' });
          continue;
        }
        try {
          const value = readFileSync(isAbsolute(fileName) ? fileName : resolve(baseDir, fileName), 'utf8').trim();
          if (!value) issues.push({ path: where, message: `file ${fileName} is empty` });
          map.delete(fileKey);
          map.set(target, value);
        } catch (err) {
          issues.push({ path: where, message: `cannot read ${fileName}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
        }
      }
    },
  });
}

function resolvePaths(doc: Document, baseDir: string): void {
  visit(doc, {
    Pair(_key, pair) {
      if (!isScalar(pair.key) || !PATH_KEYS.has(String(pair.key.value))) return;
      if (isScalar(pair.value) && typeof pair.value.value === 'string' && !isAbsolute(pair.value.value)) {
        pair.value.value = resolve(baseDir, pair.value.value);
      }
    },
  });
}
