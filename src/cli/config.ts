/**
 * `fieldgate config`: the utility office's side of remote configuration (keygen, sign, push) and the
 * technician's (history, rollback). docs/remote-config.md.
 */
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import mqtt from 'mqtt';
import { controlRequest, controlSocketPath } from '../commands/control.js';
import { loadConfig, parseConfig } from '../config/load.js';
import { readConfigText } from '../config/read.js';
import { UserError } from '../errors.js';
import { ConfigStore } from '../supervisor/config-store.js';
import { textHash } from '../supervisor/envelope.js';

function privateKey(file: string) {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new UserError(`cannot read the key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`it is ${key.asymmetricKeyType} , not Ed25519`);
    return key;
  } catch (err) {
    throw new UserError(`${file} is not an Ed25519 private key (PEM): ${(err as Error).message}`, 2);
  }
}

/** The signed envelope of a file; the file is checked first, so a broken one never leaves the office. */
export function envelopeOf(file: string, keyFile: string, version: number): string {
  const text = readConfigText(file);
  const { issues } = parseConfig(text, file);
  if (issues.length) throw new UserError(`${file}: invalid configuration, not signed`, 2, issues.slice(0, 20).map((i) => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`));
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey(keyFile)).toString('base64');
  return JSON.stringify({ v: 1, version, config: text, sig });
}

function versionFlag(raw: string | undefined): number {
  // Default: seconds since 1970, which grows with every push from the same office.
  const v = raw === undefined ? Math.floor(Date.now() / 1000) : Number(raw);
  if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`--config-version "${raw}" must be a whole number above 0`, 2);
  return v;
}

export function register(program: Command): void {
  const config = program
    .command('config')
    .summary('remote configuration: keys, signing, pushing, history and rollback')
    .addHelpText(
      'after',
      `
Examples:
  fieldgate config keygen --out /secure/office
  fieldgate config push mqtts://broker.example.net --gateway bashan-01 --key /secure/office/config.key village.yaml
  fieldgate config history -c /etc/fieldgate/config.yaml
  fieldgate config rollback -c /etc/fieldgate/config.yaml --to 1796650000`,
    );
  config
    .command('keygen')
    .summary('make an Ed25519 key pair: config.key (keep it in the office) and config.pub (for each gateway)')
    .requiredOption('--out <dir>', 'directory to write config.key and config.pub into')
    .addHelpText('after', '\nExample:\n  fieldgate config keygen --out /secure/office')
    .action((f: { out: string }) => {
      const keyFile = join(f.out, 'config.key');
      const pubFile = join(f.out, 'config.pub');
      if (existsSync(keyFile) || existsSync(pubFile)) throw new UserError(`${keyFile} or ${pubFile} exists already: not overwritten`, 2);
      const { publicKey, privateKey: key } = generateKeyPairSync('ed25519');
      writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
      process.stdout.write(`wrote ${keyFile} (private: keep it off the gateways) and ${pubFile} (remoteConfig.publicKeyFile on each gateway)\n`);
    });
  config
    .command('sign')
    .summary('print the signed envelope of a configuration file (what push publishes)')
    .argument('<file>', 'the configuration file')
    .requiredOption('--key <file>', 'the Ed25519 private key (PEM)')
    .option('--config-version <n>', 'version number, greater than the applied one (default: seconds since 1970)')
    .addHelpText('after', '\nExample:\n  fieldgate config sign village-7.yaml --key /secure/office/config.key > village-7.json')
    .action((file: string, f: { key: string; configVersion?: string }) => {
      process.stdout.write(`${envelopeOf(file, f.key, versionFlag(f.configVersion))}\n`);
    });
  config
    .command('push')
    .summary("publish a signed configuration as a gateway's desired one (retained, QoS 1)")
    .argument('<broker>', 'mqtt://HOST[:PORT] or mqtts://')
    .argument('<file>', 'the configuration file')
    .requiredOption('--gateway <id>', 'the gateway id')
    .requiredOption('--key <file>', 'the Ed25519 private key (PEM)')
    .option('--prefix <p>', 'uplink.topicPrefix of the gateway', 'fieldgate')
    .option('--config-version <n>', 'version number, greater than the applied one (default: seconds since 1970)')
    .option('--username <u>', 'broker user')
    .option('--wait <s>', 'seconds to wait for the gateway to report (0: do not wait)', '0')
    .addHelpText('after', '\nExample:\n  fieldgate config push mqtts://broker.example.net village-7.yaml --gateway village-7 --prefix water --key /secure/office/config.key --wait 180')
    .action(async (broker: string, file: string, f: { gateway: string; key: string; prefix: string; configVersion?: string; username?: string; wait: string }) => {
      const version = versionFlag(f.configVersion);
      const envelope = envelopeOf(file, f.key, version);
      const base = `${f.prefix}/${f.gateway}/config`;
      const client = await mqtt.connectAsync(broker, { username: f.username, password: process.env.FIELDGATE_MQTT_PASSWORD, reconnectPeriod: 0, connectTimeout: 10_000 }).catch((err: Error) => {
        throw new UserError(`cannot connect to ${broker}: ${err.message}`);
      });
      try {
        const waitS = Number(f.wait);
        const reported = new Promise<string | undefined>((resolve) => {
          if (!(waitS > 0)) return resolve(undefined);
          const timer = setTimeout(() => resolve(undefined), waitS * 1000);
          client.on('message', (_t, p) => {
            const r = JSON.parse(p.toString() || '{}') as { version?: number; state?: string };
            if (r.version === version && r.state !== 'pending') {
              clearTimeout(timer);
              resolve(p.toString());
            }
          });
          void client.subscribeAsync(`${base}/reported`, { qos: 1 });
        });
        await client.publishAsync(`${base}/desired`, envelope, { qos: 1, retain: true });
        process.stdout.write(`pushed version ${version} (${textHash(readConfigText(file))}) to ${base}/desired\n`);
        const r = await reported;
        if (waitS > 0) process.stdout.write(r ? `reported: ${r}\n` : `no final report within ${waitS} s (the gateway may be offline: it takes the retained version when it connects)\n`);
        if (r && JSON.parse(r).state !== 'applied') process.exitCode = 1;
      } finally {
        await client.endAsync();
      }
    });
  config
    .command('history')
    .summary('the pushed versions kept on this gateway and which one runs')
    .requiredOption('-c, --config <file>', 'configuration file of the gateway')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  fieldgate config history -c /etc/fieldgate/config.yaml')
    .action((f: { config: string; json?: boolean }) => {
      const c = loadConfig(f.config);
      const store = ConfigStore.forDataDir(c.gateway.dataDir);
      const state = store.readState();
      const local = textHash(readConfigText(f.config));
      const rows = store.versions().map((v) => ({ version: v, hash: textHash(store.readVersion(v) ?? ''), running: state?.base === local && state.applied?.version === v, pending: state?.pending?.version === v }));
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ versions: rows, report: state?.report, localFileRuns: !state?.applied || state.base !== local })}\n`);
        return;
      }
      for (const r of rows) process.stdout.write(`${String(r.version).padEnd(12)} ${r.hash}${r.running ? '  running' : ''}${r.pending ? ' (on probation)' : ''}\n`);
      if (!state?.applied || state.base !== local) process.stdout.write(`the file ${f.config} runs\n`);
      if (state?.report) process.stdout.write(`last report: version ${state.report.version} ${state.report.state}${state.report.reason ? `: ${state.report.reason}` : ''}\n`);
    });
  config
    .command('rollback')
    .summary('run a kept version again (0: the file on the device), through the running gateway, on probation')
    .requiredOption('-c, --config <file>', 'configuration file of the running gateway')
    .requiredOption('--to <version>', 'a version from `fieldgate config history`, or 0')
    .addHelpText('after', '\nExample:\n  fieldgate config rollback -c /etc/fieldgate/config.yaml --to 1796640000')
    .action(async (f: { config: string; to: string }) => {
      const c = loadConfig(f.config);
      const version = Number(f.to);
      if (!Number.isSafeInteger(version) || version < 0) throw new UserError(`--to "${f.to}" must be a version number or 0`, 2);
      let a;
      try {
        a = await controlRequest(controlSocketPath(c.gateway.dataDir), { op: 'config-rollback', version }, 120_000);
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      if (!a.ok) throw new UserError(a.error, 2);
      const r = a.report as { state: string; reason?: string };
      process.stdout.write(`${r.state}${r.reason ? `: ${r.reason}` : ''}\n`);
      if (r.state === 'rejected') process.exitCode = 1;
    });
}
