/**
 * Why the broker link failed, in words a technician can act on: the cause and the configuration key that fixes
 * it, never OpenSSL's raw text and never a secret. Node names TLS failures by code: an X.509 code when the
 * gateway refused the broker's certificate, ERR_SSL_*_ALERT_* when the broker refused the gateway.
 */
import type { IDisconnectPacket } from 'mqtt';

export interface LinkContext {
  /** uplink.cert is set, so a refused handshake is about that certificate rather than a missing one. */
  clientCert?: boolean;
  clientId?: string;
}

/** Codes of the gateway refusing the broker's certificate chain. */
const UNTRUSTED_BROKER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA',
]);

/** Alerts of the broker refusing the client certificate the gateway sent. */
const REFUSED_CLIENT_CERT = new Set(['UNKNOWN_CA', 'BAD_CERTIFICATE', 'CERTIFICATE_UNKNOWN', 'UNSUPPORTED_CERTIFICATE', 'DECRYPT_ERROR']);

/**
 * The TLS alert the broker sent, as UNKNOWN_CA: from the code, or from the text when the alert broke a write
 * (then node reports `write EPROTO` with OpenSSL's line, "sslv3 alert handshake failure").
 */
function alertOf(code: string, message: string): string | undefined {
  const byCode = /_ALERT_([A-Z_]+)$/.exec(code)?.[1];
  if (byCode) return byCode;
  const byText = /(?:tlsv1|tlsv13|sslv3) alert ([a-z ]+?)(?::|$)/m.exec(message)?.[1];
  return byText?.toUpperCase().replace(/ /g, '_');
}

/** OpenSSL's short reason ("tlsv1 alert unknown ca") instead of its one-line dump with file names. */
function tlsReason(e: { reason?: string; message?: string }): string {
  if (e.reason) return e.reason;
  const m = /:([^:]+):[^:]*\.c:\d+/.exec(e.message ?? '');
  return m?.[1] ?? (e.message ?? 'unknown').trim();
}

function describeTls(e: { code?: string; message?: string; reason?: string; cert?: { subjectaltname?: string } }, ctx: LinkContext): string | undefined {
  const code = String(e.code ?? '');
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = e.cert?.subjectaltname ? `; it is for ${e.cert.subjectaltname}` : '';
    return `TLS: the host name in uplink.url does not match the broker's certificate${names}; use a name the certificate lists`;
  }
  if (UNTRUSTED_BROKER.has(code)) return `TLS: the broker's certificate is not trusted (${e.message ?? code}); check uplink.ca`;
  if (code === 'CERT_HAS_EXPIRED') return "TLS: the broker's certificate has expired (or this gateway's clock is wrong)";
  if (code === 'CERT_NOT_YET_VALID') return "TLS: the broker's certificate is not valid yet (is this gateway's clock right?)";
  const alert = alertOf(code, e.message ?? '');
  if (alert === 'CERTIFICATE_REQUIRED') return 'TLS: the broker requires a client certificate: set uplink.cert and uplink.key';
  if (alert === 'HANDSHAKE_FAILURE') {
    // TLS 1.2 brokers answer a missing client certificate with a bare handshake failure.
    return ctx.clientCert
      ? 'TLS: the broker refused the handshake (its TLS versions or ciphers, or uplink.cert)'
      : 'TLS: the broker refused the handshake, most likely because it requires a client certificate: set uplink.cert and uplink.key';
  }
  if (alert && REFUSED_CLIENT_CERT.has(alert)) {
    return `TLS: the broker does not trust the client certificate uplink.cert (${tlsReason(e)}); it must be signed by a CA the broker trusts`;
  }
  if (alert === 'CERTIFICATE_EXPIRED') return 'TLS: the broker refused uplink.cert as expired (or this gateway\'s clock is wrong)';
  if (alert === 'CERTIFICATE_REVOKED') return 'TLS: the broker refused uplink.cert as revoked';
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH') return 'TLS: uplink.key is not the key of uplink.cert';
  if (/^ERR_OSSL_PEM_|^ERR_OSSL_UNSUPPORTED$/.test(code)) return `TLS: uplink.ca, uplink.cert or uplink.key is not readable PEM (${tlsReason(e)})`;
  if (/^ERR_SSL_|^ERR_TLS_/.test(code) || alert || /SSL routines/.test(e.message ?? '')) return `TLS: ${tlsReason(e)}`;
  return undefined;
}

/** Why a connection attempt failed. Never includes secrets. */
export function describeConnectError(err: unknown, ctx: LinkContext = {}): string {
  const e = err as { message?: string; code?: string | number; reason?: string };
  const msg = e?.message ?? String(err);
  const code = e?.code;
  if (code === 4 || code === 5 || code === 134 || code === 135 || /not authori[sz]ed|bad user name or password/i.test(msg)) {
    return 'the broker refused the credentials (check uplink.username and the password)';
  }
  const tls = describeTls(e as Parameters<typeof describeTls>[0], ctx);
  if (tls) return tls;
  if (/unacceptable protocol version/i.test(msg) || code === 1 || code === 132) {
    return 'the broker does not speak this MQTT version (try uplink.protocolVersion: 4)';
  }
  if (code === 133 || code === 2) return `the broker refused the client identifier${ctx.clientId ? ` "${ctx.clientId}"` : ''} (uplink.clientId)`;
  if (/ECONNREFUSED/.test(msg) || code === 'ECONNREFUSED') return 'connection refused (is the broker running, right host and port?)';
  if (/ENOTFOUND|EAI_AGAIN/.test(msg)) return `cannot resolve the broker's host name (${msg})`;
  return msg;
}

/** MQTT 5 DISCONNECT reason codes a gateway meets, in words (the rest by number). */
const DISCONNECT_REASONS: Record<number, string> = {
  135: 'not authorized',
  137: 'the broker is busy',
  139: 'the broker is shutting down',
  141: 'keep alive timeout (the link is too slow for uplink.keepaliveS)',
  143: 'topic filter invalid',
  144: 'topic name invalid (check uplink.topicPrefix)',
  147: 'too many messages in flight (lower uplink.inflight to the broker\'s receive maximum)',
  149: 'packet too large (lower uplink.batch.maxSamples)',
  151: 'quota exceeded',
  152: 'administrative action',
  153: 'payload format invalid',
  154: 'retained messages not supported',
  155: 'QoS not supported',
  156: 'use another server',
  157: 'server moved',
  159: 'connection rate exceeded',
};

/** Why the broker ended a session that was up (an MQTT 5 DISCONNECT). */
export function describeDisconnect(packet: IDisconnectPacket, ctx: LinkContext = {}): string {
  const code = packet.reasonCode ?? 0;
  const said = packet.properties?.reasonString ? ` ("${packet.properties.reasonString}")` : '';
  if (code === 142) {
    const id = ctx.clientId ? ` "${ctx.clientId}"` : '';
    return `session taken over by another client with the same clientId${id} (each gateway needs its own uplink.clientId)${said}`;
  }
  return `${DISCONNECT_REASONS[code] ?? 'disconnected'} (reason code ${code})${said}`;
}
