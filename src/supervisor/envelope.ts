/**
 * The pushed configuration's envelope (`config/desired`, docs/remote-config.md) and the judgement of what it
 * carries, pure: `{"v":1,"version":N,"config":"<YAML>","sig":"<base64 Ed25519 of the UTF-8 bytes of config>"}`.
 * Strict like the command parser: anything else is refused with the reason. Then the signature, the file's
 * validity (every error with its key path, as `fieldgate validate` lists them) and the guard rails: what only
 * the file on the device may change.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { parseConfig } from '../config/load.js';
import { MAX_CONFIG_BYTES } from '../config/read.js';

export interface Envelope {
  version: number;
  config: string;
  sig: Buffer;
}

/** A configuration file is at most 1 MiB; its envelope adds the signature and a few keys. */
export const MAX_ENVELOPE_BYTES = Math.ceil(MAX_CONFIG_BYTES * 1.1) + 1024;
const KEYS = new Set(['v', 'version', 'config', 'sig']);

export type Parsed = { ok: true; envelope: Envelope } | { ok: false; reason: string; version?: number };

export function parseEnvelope(payload: Buffer): Parsed {
  if (payload.length > MAX_ENVELOPE_BYTES) return { ok: false, reason: `the message is ${payload.length} bytes; at most ${MAX_ENVELOPE_BYTES}` };
  let o: unknown;
  try {
    o = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, reason: 'not a JSON object' };
  const e = o as Record<string, unknown>;
  const version = Number.isSafeInteger(e.version) && (e.version as number) > 0 ? (e.version as number) : undefined;
  const refuse = (reason: string): Parsed => (version === undefined ? { ok: false, reason } : { ok: false, reason, version });
  for (const k of Object.keys(e)) if (!KEYS.has(k)) return refuse(`unknown key "${k.slice(0, 40)}" (takes v, version, config, sig)`);
  if (e.v !== 1) return refuse(`"v" must be 1, got ${JSON.stringify(e.v)?.slice(0, 20)}`);
  if (version === undefined) return refuse('"version" must be a whole number above 0');
  if (typeof e.config !== 'string' || e.config.length === 0) return refuse('"config" must be the YAML file as a string');
  if (Buffer.byteLength(e.config, 'utf8') > MAX_CONFIG_BYTES) return refuse(`"config" is over ${MAX_CONFIG_BYTES} bytes`);
  if (e.sig === undefined) return refuse('the file is not signed ("sig" is missing)');
  if (typeof e.sig !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(e.sig)) return refuse('"sig" must be base64');
  const sig = Buffer.from(e.sig, 'base64');
  if (sig.length !== 64) return refuse(`"sig" must be a 64-byte Ed25519 signature, got ${sig.length} bytes`);
  return { ok: true, envelope: { version, config: e.config, sig } };
}

export function publicKeyFrom(pem: string | Buffer): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${key.asymmetricKeyType ?? 'not an asymmetric key'}, not Ed25519`);
  return key;
}

export function signatureValid(e: Envelope, key: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(e.config, 'utf8'), key, e.sig);
  } catch {
    return false;
  }
}

/** sha256 of the file's bytes, 12 hex digits: names a version on disk and in reports. */
export function textHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 12);
}

export interface ConfigError {
  path: string;
  message: string;
}

export type Judged = { ok: true; config: Config } | { ok: false; reason: string; errors?: ConfigError[] };

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Whether the pushed file may replace the running one: valid, and equal where only the device's own file may
 * decide (the remoteConfig block, the gateway's identity and data directory), with no secret in it. The status
 * token stays the device's: the effective configuration takes it from the running one.
 */
export function judgeConfig(text: string, version: number, running: Config): Judged {
  const { config, issues } = parseConfig(text, `pushed version ${version}`);
  if (!config) {
    return { ok: false, reason: `the file is invalid (${issues.length} ${issues.length === 1 ? 'error' : 'errors'})`, errors: issues.slice(0, 100).map((i) => ({ path: i.path, message: `line ${i.line}: ${i.message}` })) };
  }
  const changed: string[] = [];
  if (!same(config.remoteConfig, running.remoteConfig)) changed.push('remoteConfig');
  if (config.gateway.id !== running.gateway.id) changed.push('gateway.id');
  if (config.gateway.dataDir !== running.gateway.dataDir) changed.push('gateway.dataDir');
  if (changed.length) return { ok: false, reason: `${changed.join(', ')} can only be changed in the file on the device`, errors: changed.map((path) => ({ path, message: 'differs from the running configuration' })) };
  if (config.status?.token !== undefined) {
    return { ok: false, reason: 'a pushed file must not carry status.token: secrets stay on the device (the running token is kept)', errors: [{ path: 'status.token', message: 'must not be pushed' }] };
  }
  const effective: Config = running.status?.token && config.status ? { ...config, status: { ...config.status, token: running.status.token } } : config;
  return { ok: true, config: effective };
}
