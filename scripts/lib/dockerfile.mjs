// Reads a Dockerfile into stages of instructions, and maps the RUN commands we use to what CI
// does for each outside Docker. Only what our Dockerfile uses is understood; anything else is an
// error, so that a new instruction or RUN command cannot slip past scripts/check-container-steps.mjs.

/**
 * @typedef {{ op: string, args: string, line: number }} Instruction
 * @typedef {{ image: string, name: string | undefined, instructions: Instruction[] }} Stage
 */

/** Joins `\` continuations, drops comments and blank lines, splits at each FROM. */
export function parseDockerfile(text) {
  /** @type {Stage[]} */
  const stages = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) return;
    if (pending === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const logical = (pending + line).trim();
    pending = '';
    const match = /^(\w+)\s+(.*)$/s.exec(logical);
    if (!match) throw new Error(`Dockerfile:${startLine}: cannot read "${logical}"`);
    const op = match[1].toUpperCase();
    const args = match[2].trim();
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`Dockerfile:${startLine}: cannot read FROM ${args}`);
      stages.push({ image: from[1], name: from[2], instructions: [] });
      return;
    }
    if (stages.length === 0) throw new Error(`Dockerfile:${startLine}: ${op} before FROM`);
    stages.at(-1).instructions.push({ op, args, line: startLine });
  });
  return stages;
}

/** ENTRYPOINT, CMD and HEALTHCHECK in exec (JSON) form; the shell form would need /bin/sh -c. */
export function parseExecForm(args, where) {
  if (!args.startsWith('[')) throw new Error(`${where}: use the exec form ["cmd", "arg"], as docker's own signal handling needs`);
  const list = JSON.parse(args);
  if (!Array.isArray(list) || list.some((a) => typeof a !== 'string')) throw new Error(`${where}: expected a JSON array of strings`);
  return list;
}

/** `HEALTHCHECK --interval=30s --timeout=5s CMD [...]` into options (in ms) and the command. */
export function parseHealthcheck(args, where) {
  const match = /^((?:--[\w-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(args);
  if (!match) throw new Error(`${where}: expected HEALTHCHECK [--option=value ...] CMD [...]`);
  const options = {};
  for (const opt of match[1].trim().split(/\s+/).filter(Boolean)) {
    const [, key, value, unit] = /^--([\w-]+)=(\d+)(ms|s|m)$/.exec(opt) ?? [];
    if (!key) throw new Error(`${where}: cannot read HEALTHCHECK option ${opt}`);
    options[key] = Number(value) * { ms: 1, s: 1_000, m: 60_000 }[unit];
  }
  return { options, command: parseExecForm(match[2], where) };
}

/**
 * Every command our RUN lines chain with `&&`, and what CI does with it outside Docker:
 * - `exec`: run it for real, in the emulated stage folder, with container paths mapped;
 * - `installed`: the host must already have these Debian packages (.ci/run installs them);
 * - `image-only`: it only trims the image (apt lists, npm cache); on the CI machine it would
 *   delete shared state, so it is skipped, and named in the output;
 * - `chown-user`: hand the folder to the image's `node` user (uid 1000 in the node images).
 */
const RUN_STEPS = [
  { pattern: /^npm ci --no-audit --no-fund$/, kind: 'exec' },
  { pattern: /^npm run build$/, kind: 'exec' },
  { pattern: /^sh scripts\/container\/install-runtime\.sh \S+$/, kind: 'exec' },
  { pattern: /^mkdir -p \S+$/, kind: 'exec' },
  { pattern: /^apt-get update$/, kind: 'image-only' },
  { pattern: /^apt-get install -y --no-install-recommends ([\w.+-]+(?: [\w.+-]+)*)$/, kind: 'installed' },
  { pattern: /^rm -rf \/var\/lib\/apt\/lists\/\*$/, kind: 'image-only' },
  { pattern: /^npm cache clean --force$/, kind: 'image-only' },
  { pattern: /^chown node:node (\S+)$/, kind: 'chown-user' },
];

/** Splits a RUN line at `&&` and classifies each command; an unknown command is an error. */
export function classifyRun(args, where) {
  if (/["'`$;|<>]/.test(args)) throw new Error(`${where}: RUN ${args}: quoting, variables, pipes and ';' are not understood here; keep RUN lines to plain commands joined by &&`);
  return args.split(/\s*&&\s*/).map((command) => {
    for (const step of RUN_STEPS) {
      const match = step.pattern.exec(command);
      if (match) return { command, kind: step.kind, match };
    }
    throw new Error(`${where}: RUN command "${command}" is unknown to scripts/lib/dockerfile.mjs; teach it what CI does with it`);
  });
}

/** Simple .dockerignore patterns (names and `*` globs at the context root), enough to catch a COPY source excluded by mistake. */
export function isDockerIgnored(ignoreText, path) {
  const first = path.replace(/^\.\//, '').split('/')[0];
  return ignoreText.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !l.startsWith('!')).some((pattern) => {
    const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
    return regex.test(first) || regex.test(path);
  });
}
