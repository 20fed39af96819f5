/** MQTT session options from the configuration; secret files are read once, at start, with clear errors. */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { SessionOptions } from './session.js';
import type { UplinkProfile } from './profile.js';
import { fieldgateProfile } from './profiles/fieldgate/index.js';

function readSecretFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

/** `profile` gives the will, asked at every dial; fieldgate v1 by default. */
export function sessionOptions(config: Config, profile?: UplinkProfile): SessionOptions {
  const u = config.uplink!;
  const wire = profile ?? fieldgateProfile({ gatewayId: config.gateway.id, topicPrefix: u.topicPrefix, format: u.format });
  const password = process.env.FIELDGATE_MQTT_PASSWORD ?? (u.passwordFile ? readSecretFile('uplink.passwordFile', u.passwordFile).toString('utf8').split(/\r?\n/)[0] : undefined);
  return {
    url: u.url,
    ...(u.urls ? { urls: u.urls, failoverAttempts: u.failover.attempts, primaryCheckMs: u.failover.primaryCheckS * 1000 } : {}),
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
    // A birth kept retained across a quick reconnect needs the will held back as long (docs/payload.md "Status").
    ...(wire.retainedBirth ? { willDelayS: u.keepaliveS } : {}),
    will: () => wire.will(),
  };
}

