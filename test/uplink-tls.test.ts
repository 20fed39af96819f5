/**
 * TLS failures against a real Mosquitto are named by their cause and the key that fixes it: a host name the
 * broker's certificate does not list (uplink.url), a broker that requires a client certificate (uplink.cert
 * and uplink.key), a client certificate the broker does not trust (uplink.cert), an untrusted broker
 * (uplink.ca); never OpenSSL's raw text. A TLS 1.2 peer that refuses the handshake for want of a client
 * certificate is a node TLS server, since that alert differs from TLS 1.3's.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttSession, type SessionOptions } from '../src/uplink/session.js';
import { recordingLogger, type RecordingLogger } from './helpers/gateway.js';
import { makeTlsFiles, needPeers, startMosquitto, tempDir, which, type MosquittoPeer, type TlsFiles } from './helpers/peers.js';

const skip = needPeers('mosquitto', 'openssl');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server certificate for broker.example only, signed by the test CA: 127.0.0.1 does not match it. */
async function wrongNameCert(dir: string, tls: TlsFiles): Promise<{ certFile: string; keyFile: string }> {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run(which('openssl') ?? 'openssl', args);
  writeFileSync(f('wrong.ext'), 'subjectAltName=DNS:broker.example\nextendedKeyUsage=serverAuth\n');
  await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('wrong.key'),
    '-out', f('wrong.csr'), '-subj', '/CN=broker.example');
  await openssl('x509', '-req', '-in', f('wrong.csr'), '-CA', tls.caFile, '-CAkey', tls.caKeyFile, '-CAcreateserial', '-out', f('wrong.crt'),
    '-days', '30', '-extfile', f('wrong.ext'));
  return { certFile: f('wrong.crt'), keyFile: f('wrong.key') };
}

describe.skipIf(skip)('uplink TLS diagnoses against Mosquitto', () => {
  let tls: TlsFiles;
  let other: TlsFiles;
  let wrongName: { certFile: string; keyFile: string };
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeAll(async () => {
    const dir = tempDir('tls');
    tls = await makeTlsFiles(dir);
    other = await makeTlsFiles(tempDir('tls-other'));
    wrongName = await wrongNameCert(dir, tls);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  });

  async function broker(opts: { certFile?: string; keyFile?: string; requireCertificate?: boolean } = {}): Promise<MosquittoPeer> {
    const b = await startMosquitto({ tls: { caFile: tls.caFile, certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, ...opts } });
    cleanups.push(() => b.stop());
    return b;
  }

  function session(url: string, files: { ca?: string; cert?: string; key?: string }, extra: Partial<SessionOptions> = {}): { session: MqttSession; log: RecordingLogger } {
    const log = recordingLogger();
    const read = (file?: string) => (file ? readFileSync(file) : undefined);
    const s = new MqttSession({
      url, clientId: 'gw-tls', insecure: false, protocolVersion: 5, keepaliveS: 30, connectTimeoutMs: 5000, reconnectMinMs: 200,
      reconnectMaxMs: 1000, will: { topic: 'fieldgate/gw-tls/status', payload: '{}' },
      ca: read(files.ca), cert: read(files.cert), key: read(files.key), ...extra,
    }, log.logger);
    cleanups.push(() => s.close());
    s.start();
    return { session: s, log };
  }

  /** The first "connect failed" line: the diagnosis under test. */
  async function failure(log: RecordingLogger): Promise<string> {
    const end = Date.now() + 10_000;
    for (;;) {
      const line = log.warnings(/^MQTT connect failed/)[0];
      if (line) return line;
      if (Date.now() > end) throw new Error(`no connect failure logged: ${JSON.stringify(log.lines.map((l) => l.msg))}`);
      await sleep(25);
    }
  }

  /** No OpenSSL dump (its error numbers and source file names) reaches the log. */
  const noRawOpenssl = (line: string) => expect(line).not.toMatch(/error:[0-9A-F]{8}|\.c:\d+|SSL routines/);

  it('connects with mutual TLS and a password over mqtts:// without a clear-text warning', async () => {
    const b = await broker({ requireCertificate: true });
    const { session: s, log } = session(b.url, { ca: tls.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile }, { username: 'gw01', password: 'tls-pw-1234' });
    const end = Date.now() + 10_000;
    while (!s.connected && Date.now() < end) await sleep(25);
    expect(s.connected).toBe(true);
    expect(log.warnings(/in clear/)).toEqual([]);
  });

  it('resumes the TLS session at a reconnect instead of a full handshake', async () => {
    const b = await broker();
    const { session: s } = session(b.url, { ca: tls.caFile });
    const connected = async () => {
      const end = Date.now() + 15_000;
      while (!s.connected && Date.now() < end) await sleep(25);
      expect(s.connected).toBe(true);
    };
    await connected();
    expect(s.tlsResumed).toBe(false);
    // A session ticket arrives after the handshake; then the link goes (the broker keeps running: a restarted
    // broker has new ticket keys and cannot resume anything).
    await sleep(300);
    (s as unknown as { raw: { socket: { destroy(): void } } }).raw.socket.destroy();
    await sleep(100);
    await connected();
    expect(s.tlsResumed).toBe(true);
  });

  it('a host name the broker certificate does not list: names uplink.url, not uplink.ca', async () => {
    const b = await broker(wrongName);
    const line = await failure(session(b.url, { ca: tls.caFile }).log);
    expect(line).toMatch(/the host name in uplink\.url does not match the broker's certificate; it is for DNS:broker\.example/);
    expect(line).not.toMatch(/uplink\.ca/);
    noRawOpenssl(line);
  });

  it('a broker that requires a client certificate: says to set uplink.cert and uplink.key', async () => {
    const b = await broker({ requireCertificate: true });
    const line = await failure(session(b.url, { ca: tls.caFile }).log);
    expect(line).toMatch(/the broker requires a client certificate: set uplink\.cert and uplink\.key/);
    expect(line).not.toMatch(/uplink\.ca/);
    noRawOpenssl(line);
  });

  it('a TLS 1.2 broker that refuses the handshake without a client certificate: says the same', async () => {
    const server: TlsServer = createTlsServer({
      key: readFileSync(tls.serverKeyFile), cert: readFileSync(tls.serverCertFile), ca: readFileSync(tls.caFile),
      requestCert: true, rejectUnauthorized: true, maxVersion: 'TLSv1.2',
    });
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const line = await failure(session(`mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`, { ca: tls.caFile }).log);
    expect(line).toMatch(/requires a client certificate: set uplink\.cert and uplink\.key/);
    noRawOpenssl(line);
  });

  it('a client certificate from a CA the broker does not know: the broker does not trust uplink.cert', async () => {
    const b = await broker({ requireCertificate: true });
    const line = await failure(session(b.url, { ca: tls.caFile, cert: other.clientCertFile, key: other.clientKeyFile }).log);
    expect(line).toMatch(/the broker does not trust the client certificate uplink\.cert \(tlsv1 alert unknown ca\)/);
    noRawOpenssl(line);
  });

  it('a broker signed by another CA: the broker certificate is not trusted, check uplink.ca', async () => {
    const b = await broker();
    const line = await failure(session(b.url, { ca: other.caFile }).log);
    expect(line).toMatch(/TLS: the broker's certificate is not trusted \(self-signed certificate in certificate chain\); check uplink\.ca/);
    noRawOpenssl(line);
  });
});
