/** MQTT session options from the configuration; secret files are read once, at start, with clear errors. */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { SessionOptions } from './session.js';
import { offlineStatus, topicsFor } from './uplink.js';

function readSecretFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

export function sessionOptions(config: Config): SessionOptions {
  const u = config.uplink!;
  const password = process.env.FIELDGATE_MQTT_PASSWORD ?? (u.passwordFile ? readSecretFile('uplink.passwordFile', u.passwordFile).toString('utf8').split(/\r?\n/)[0] : undefined);
  const topics = topicsFor(u.topicPrefix, config.gateway.id);
  return {
    url: u.url,
    clientId: u.clientId ?? `fieldgate-${config.gateway.id}`,
    username: u.username,
    password,
    ca: u.ca ? readSecretFile('uplink.ca', u.ca) : undefined,
    cert: u.cert ? readSecretFile('uplink.cert', u.cert) : undefined,
    key: u.key ? readSecretFile('uplink.key', u.key) : undefined,
    insecure: u.insecure,
    protocolVersion: u.protocolVersion,
    keepaliveS: u.keepaliveS,
    connectTimeoutMs: u.connectTimeoutMs,
    reconnectMinMs: u.reconnectMinMs,
    reconnectMaxMs: u.reconnectMaxMs,
    will: { topic: topics.status, payload: offlineStatus('lost') },
  };
}

