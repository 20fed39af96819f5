/**
 * Which configuration values are secrets. Their values never appear in a message (a refused reload writes its
 * errors to the journal) and are left out of the configuration hash, which is published retained in the
 * birth: a hash over a short token could be brute-forced offline.
 */
import type { RuleIssue } from './issues.js';

/** Key names that hold or unlock a secret wherever they appear. */
const SECRET_NAME = /token|passw(?:or)?d|secret|passphrase|credential|api[-_]?key|private[-_]?key|^key$/i;
/** Keys that are secrets by their place: half of the broker account. */
const SECRET_PLACES = new Set(['uplink.username']);

export function isSecretPath(path: readonly PropertyKey[]): boolean {
  const last = path[path.length - 1];
  if (typeof last !== 'string') return false;
  return SECRET_NAME.test(last) || (path.length === 2 && SECRET_PLACES.has(`${String(path[0])}.${last}`));
}

/**
 * `mqtts://user:pass@host` -> `mqtts://***@host`: a URL's user and password are never shown, even in a URL
 * malformed otherwise (`mqtt:/user:pass@host`); at worst text with an "@" loses what comes before it.
 */
export function withoutUserinfo(text: string): string {
  return text.replace(/^([A-Za-z][\w+.-]*:\/\/)?\S*@/, (_, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** True when a URL holds a user name or password (`scheme://user:pass@host`). */
export function hasUserinfo(url: string): boolean {
  return /^[A-Za-z][\w+.-]*:\/\/[^/?#\s]*@/.test(url);
}

/**
 * Credentials in uplink.url would be logged on every connect line and published nowhere safe; they belong in
 * uplink.username and uplink.passwordFile. Run on the raw document so it is reported with the schema errors.
 */
export function urlCredentialIssues(data: unknown): RuleIssue[] {
  const uplink = (data as { uplink?: { url?: unknown } } | null)?.uplink;
  if (typeof uplink?.url !== 'string' || !hasUserinfo(uplink.url)) return [];
  return [
    {
      path: ['uplink', 'url'],
      message: 'must not hold a user name or password (the part before "@"): put the user in uplink.username and the password in the file uplink.passwordFile (or FIELDGATE_MQTT_PASSWORD)',
    },
  ];
}

/** A marker in place of a secret: the hash still changes when one is added or removed, never with its value. */
const SET = '(set)';

/** The configuration as canonical JSON (keys sorted) with every secret replaced by a marker. */
export function secretFreeJson(config: unknown): string {
  return JSON.stringify(withoutSecrets(config, []));
}

function withoutSecrets(value: unknown, path: string[]): unknown {
  if (Array.isArray(value)) return value.map((item) => withoutSecrets(item, path));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const child = (value as Record<string, unknown>)[key];
    if (child === undefined) continue;
    const here = [...path, key];
    if (isSecretPath(here)) out[key] = SET;
    else if (key === 'url' && typeof child === 'string') out[key] = withoutUserinfo(child);
    else out[key] = withoutSecrets(child, here);
  }
  return out;
}
