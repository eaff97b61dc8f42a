import { MAX_LINE_BYTES } from './imap-connection.js';
import { formatFlags } from './imap-fetch.js';
import { MailboxView, SYSTEM_FLAGS, type DemoMailbox } from './imap-mailbox.js';
import {
  ImapError, imapAstring, inSequenceSet, parseSequenceSet, requireText, tokenText, type ImapCommand, type ImapToken,
} from './imap-syntax.js';
import type { Session } from './imap-state.js';

/**
 * The mailbox commands of the demo server (RFC 3501 sections 6.3 and 6.4, RFC 2177 IDLE).
 * Every user has exactly one mailbox, INBOX; other names do not exist.
 */

const FLAGS_LINE = `* FLAGS (${SYSTEM_FLAGS.join(' ')})`;

/** The user's INBOX if `name` names it (INBOX is case-insensitive, RFC 3501 5.1). */
function mailboxNamed(s: Session, name: string): DemoMailbox {
  if (name.toUpperCase() !== 'INBOX') throw new ImapError('NO', `[NONEXISTENT] Unknown mailbox ${name}`);
  return s.ctx.store.inbox(s.user ?? '');
}

/** SELECT and EXAMINE; a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1). */
export async function select(s: Session, cmd: ImapCommand): Promise<string> {
  s.state = 'authenticated';
  s.view = undefined;
  const box = mailboxNamed(s, requireText(cmd.args[0], 'mailbox name'));
  const readOnly = cmd.verb === 'EXAMINE';
  const view = new MailboxView(box);
  const recent = box.messages.filter((message) => message.recent);
  if (!readOnly) for (const message of recent) message.recent = false;
  const firstUnseen = box.messages.findIndex((message) => !message.flags.has('\\Seen')) + 1;
  const permanent = readOnly ? '()' : `(${SYSTEM_FLAGS.join(' ')} \\*)`;
  const lines = [
    FLAGS_LINE,
    `* OK [PERMANENTFLAGS ${permanent}] Flags permitted`,
    `* ${view.exists} EXISTS`,
    `* ${recent.length} RECENT`,
    ...(firstUnseen > 0 ? [`* OK [UNSEEN ${firstUnseen}] First unseen`] : []),
    `* OK [UIDVALIDITY ${box.uidValidity}] UIDs valid`,
    `* OK [UIDNEXT ${box.uidNext}] Predicted next UID`,
  ];
  await s.conn.send(lines.map((line) => `${line}\r\n`).join(''));
  s.state = 'selected';
  s.view = view;
  s.readOnly = readOnly;
  return `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${cmd.verb} completed`;
}

/** LIST and LSUB: INBOX is the only mailbox; `LIST "" ""` asks for the hierarchy delimiter. */
export async function list(s: Session, cmd: ImapCommand): Promise<string> {
  // Tolerate RFC 5258 selection options before the reference: `LIST (SUBSCRIBED) "" "*"`.
  const args = cmd.args[0]?.kind === 'list' ? cmd.args.slice(1) : cmd.args;
  const pattern = requireText(args[1], 'mailbox pattern');
  if (pattern === '') {
    await s.conn.line(`* ${cmd.verb} (\\Noselect) "/" ""`);
  } else if (matchesPattern('INBOX', pattern)) {
    const attributes = cmd.verb === 'LSUB' ? '()' : '(\\HasNoChildren)';
    await s.conn.line(`* ${cmd.verb} ${attributes} "/" INBOX`);
  }
  return `${cmd.verb} completed`;
}

/** RFC 3501 6.3.8 wildcards: `*` matches anything, `%` anything but the delimiter. */
function matchesPattern(name: string, pattern: string): boolean {
  const source = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '[^/]*');
  return new RegExp(`^${source}$`, 'i').test(name);
}

export async function status(s: Session, cmd: ImapCommand): Promise<string> {
  const name = requireText(cmd.args[0], 'mailbox name');
  const box = mailboxNamed(s, name);
  const wanted = cmd.args[1]?.kind === 'list' ? cmd.args[1].items : [];
  const values: Record<string, number> = {
    MESSAGES: box.messages.length,
    RECENT: box.messages.filter((message) => message.recent).length,
    UIDNEXT: box.uidNext,
    UIDVALIDITY: box.uidValidity,
    UNSEEN: box.messages.filter((message) => !message.flags.has('\\Seen')).length,
  };
  const pairs = wanted.map((token) => {
    const item = (tokenText(token) ?? '').toUpperCase();
    if (values[item] === undefined) throw new ImapError('BAD', `Unsupported STATUS item ${item}`);
    return `${item} ${values[item]}`;
  });
  await s.conn.line(`* STATUS ${imapAstring(name)} (${pairs.join(' ')})`);
  return 'STATUS completed';
}

/** APPEND INBOX [(flags)] [date-time] literal (RFC 3501 6.3.11). */
export async function append(s: Session, cmd: ImapCommand): Promise<string> {
  const box = mailboxNamed(s, requireText(cmd.args[0], 'mailbox name'));
  const message = cmd.args[cmd.args.length - 1];
  if (cmd.args.length < 2 || message?.kind !== 'string') throw new ImapError('BAD', 'APPEND needs a message literal');
  const middle = cmd.args.slice(1, -1);
  const flags = flagList(middle.filter((token) => token.kind === 'list'));
  const dateText = tokenText(middle.find((token) => token.kind !== 'list'));
  const date = dateText ? new Date(dateText.replace(/^(\s?\d+)-(\w+)-(\d+)/, '$2 $1 $3')) : new Date();
  box.append(Buffer.from(message.value), flags, Number.isNaN(date.getTime()) ? new Date() : date);
  await sendUpdates(s);
  return 'APPEND completed';
}

/** NOOP and CHECK: the moment to report what changed (RFC 3501 6.1.2). */
export async function noop(s: Session, cmd: ImapCommand): Promise<string> {
  await sendUpdates(s);
  return `${cmd.verb} completed`;
}

/** Sends EXPUNGE / EXISTS for changes this session has not been told about yet. */
async function sendUpdates(s: Session): Promise<void> {
  const lines = s.view?.sync() ?? [];
  if (lines.length > 0) await s.conn.send(lines.map((line) => `${line}\r\n`).join(''));
}

/** CLOSE expunges silently (RFC 3501 6.4.2); UNSELECT does not (RFC 3691). */
export async function close(s: Session, cmd: ImapCommand): Promise<string> {
  const view = s.view;
  if (view && cmd.verb === 'CLOSE' && !s.readOnly) {
    view.box.remove(view.box.messages.filter((m) => m.flags.has('\\Deleted')).map((m) => m.uid));
  }
  s.state = 'authenticated';
  s.view = undefined;
  s.readOnly = false;
  return `${cmd.verb} completed`;
}

export async function expunge(s: Session): Promise<string> {
  const view = s.view;
  if (!view) throw new ImapError('BAD', 'No mailbox selected');
  if (s.readOnly) throw new ImapError('NO', '[READ-ONLY] Mailbox is read-only');
  view.box.remove(view.box.messages.filter((m) => m.flags.has('\\Deleted')).map((m) => m.uid));
  await sendUpdates(s);
  return 'EXPUNGE completed';
}

/** STORE / UID STORE with FLAGS, +FLAGS, -FLAGS and their .SILENT forms (RFC 3501 6.4.6). */
export async function store(s: Session, cmd: ImapCommand): Promise<string> {
  const view = s.view;
  if (!view) throw new ImapError('BAD', 'No mailbox selected');
  if (s.readOnly) throw new ImapError('NO', '[READ-ONLY] Mailbox is read-only');
  const byUid = cmd.verb === 'UID STORE';
  const action = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(requireText(cmd.args[1], 'STORE action'));
  if (!action) throw new ImapError('BAD', 'Unsupported STORE action');
  const flags = flagList(cmd.args.slice(2));
  const set = parseSequenceSet(requireText(cmd.args[0], 'sequence set'), byUid ? (view.uids[view.uids.length - 1] ?? 0) : view.exists);
  for (let seq = 1; seq <= view.exists; seq++) {
    const message = view.at(seq);
    if (!message || !inSequenceSet(set, byUid ? message.uid : seq)) continue;
    if (action[1] === '') message.flags.clear();
    for (const flag of flags) {
      if (action[1] === '-') message.flags.delete(flag);
      else message.flags.add(flag);
    }
    if (action[2]) continue;
    await s.conn.line(`* ${seq} FETCH (${byUid ? `UID ${message.uid} ` : ''}FLAGS ${formatFlags(message.flags)})`);
  }
  return `${cmd.verb} completed`;
}

/** Flags given as one list or as bare atoms; system flags are stored in their canonical case. */
function flagList(tokens: ImapToken[]): string[] {
  const atoms = tokens.flatMap((token) => (token.kind === 'list' ? token.items : [token]));
  return atoms.map((token) => {
    const flag = requireText(token, 'flag');
    return SYSTEM_FLAGS.find((known) => known.toLowerCase() === flag.toLowerCase()) ?? flag;
  });
}

/**
 * IDLE (RFC 2177): `+ idling`, then EXISTS / EXPUNGE as they happen, until the client's DONE.
 * Returns 'gone' when the client disconnected while idling.
 */
export async function idle(s: Session): Promise<string> {
  await s.conn.line('+ idling');
  const report = (): void => {
    void sendUpdates(s).catch(() => undefined);
  };
  const unsubscribe = s.view?.box.onChange(report);
  report();
  try {
    const line = await s.conn.reader.readLine(MAX_LINE_BYTES);
    if (line === null) throw new Error('connection closed during IDLE');
    if (line.toString('latin1').trim().toUpperCase() !== 'DONE') throw new ImapError('BAD', 'Expected DONE');
  } finally {
    unsubscribe?.();
  }
  return 'IDLE terminated';
}
