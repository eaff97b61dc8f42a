/**
 * Shell commands from a Markdown file's fenced code blocks. Blocks tagged sh, bash, shell or
 * console hold commands; every fence must say what it holds, so that a command cannot hide in an
 * untagged block. A `\` at the end of a line continues it, `# ...` outside quotes is a comment,
 * and `a && b` is two commands (a pipeline stays one).
 */

export interface ReadmeCommand {
  /** The command as a shell would see it: continuations joined, comment removed. */
  command: string;
  /** 1-based line of the README where the command starts. */
  line: number;
}

const SHELL_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console']);

export function extractShellCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split('\n');
  const commands: ReadmeCommand[] = [];
  let block: { language: string; start: number } | undefined;
  let pending: { text: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    const fence = /^\s*```(\S*)\s*$/.exec(raw);
    if (fence) {
      if (block) block = undefined;
      else if (!fence[1]) throw new Error(`README line ${index + 1}: a fence without a language; tag it (sh for commands, text, yaml...)`);
      else block = { language: fence[1], start: index + 1 };
      return;
    }
    if (!block || !SHELL_LANGUAGES.has(block.language)) return;
    const text = stripComment(raw).trimEnd();
    const line = pending?.line ?? index + 1;
    const joined = `${pending ? `${pending.text} ` : ''}${text.trim()}`;
    if (joined.endsWith('\\')) {
      pending = { text: joined.slice(0, -1).trimEnd(), line };
      return;
    }
    pending = undefined;
    for (const command of splitAnd(joined)) commands.push({ command, line });
  });
  if (block) throw new Error(`README line ${block.start}: fence not closed`);
  return commands;
}

/** Removes a `#` comment that starts outside quotes at a word boundary. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** Splits at `&&` outside quotes; empty parts (blank lines) are dropped. */
function splitAnd(line: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '&' && line[i + 1] === '&') {
      parts.push(line.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  parts.push(line.slice(start));
  return parts.map((p) => p.trim()).filter(Boolean);
}
