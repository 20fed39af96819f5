/**
 * The local status server on node:http: the page, its JSON API, server-sent events, /healthz and /metrics.
 * Read-only (GET and HEAD), but for the tools under /api/tools (tools.ts: writes and alarm actions through the
 * command guard, register reads and scans), offered only with a token and only to a request carrying it in a
 * header. With a token every route but /healthz and the page's static files (code, no data) needs it, as
 * `Authorization: Bearer TOKEN` or `?token=TOKEN`. Without a token it listens only on
 * loopback and answers only requests addressed to a loopback name (no DNS rebinding from a web page).
 * A failure here never reaches acquisition: handlers catch and answer 500. Hostile or broken clients cost
 * bounded memory and log: connections are capped, idle and slow ones time out, malformed requests get 400 and
 * at most one log line a minute, and no log line carries a request's query (it may hold the token).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../log.js';
import { PACKAGE_ROOT } from '../paths.js';
import { RateLimitedLog } from '../sources/ratelog.js';
import { isLoopback, parseListen } from './listen.js';
import type { StatusState } from './state.js';
import { toolRoutes } from './tools.js';
import { gatewayOf, type GatewayRef, type StatusSession } from './types.js';

export interface StatusServerOptions {
  /** HOST:PORT; port 0 picks a free port (tests). */
  listen: string;
  /** Required when `listen` is not loopback. */
  token?: string;
  state: StatusState;
  gateway: GatewayRef;
  logger: Logger;
  /** Live pages (/events) at once; more get 503. Default 8. */
  maxClients?: number;
  /** How often live pages get a snapshot (when it changed). Default 1000 ms. */
  intervalMs?: number;
  /** Open connections at once (live pages included); more are closed as they arrive. Default 64. */
  maxConnections?: number;
  /** A connection with no traffic for this long is closed, e.g. one that never sends a request. Default 15000 ms. */
  idleTimeoutMs?: number;
  /** Time for a request's headers to arrive (a client dripping them is cut off). Default 10000 ms. */
  headersTimeoutMs?: number;
  /** Time for a whole request to arrive. Default 30000 ms. */
  requestTimeoutMs?: number;
  /** How long a kept-alive connection waits for its next request. Default 5000 ms. */
  keepAliveTimeoutMs?: number;
}

export interface StatusServer {
  /** http://HOST:PORT, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

interface Asset {
  type: string;
  body: Buffer;
}

const ASSET_DIR = join(PACKAGE_ROOT, 'src', 'status', 'assets');
/** Snapshots are also sent unchanged this often, so a page can tell the gateway is still there. */
const HEARTBEAT_MS = 10_000;
/** A live page that reads slower than this backlog is dropped rather than buffered without bound. */
const MAX_CLIENT_BACKLOG = 1 << 20;
const DEFAULT_MAX_CONNECTIONS = 64;

function loadAssets(): Map<string, Asset> {
  const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');
  const files: Array<[string, string, string]> = [
    ['/', join(ASSET_DIR, 'index.html'), 'text/html; charset=utf-8'],
    ['/assets/status.css', join(ASSET_DIR, 'status.css'), 'text/css; charset=utf-8'],
    ['/assets/status.js', join(ASSET_DIR, 'status.js'), 'text/javascript; charset=utf-8'],
    ['/assets/chart.js', join(ASSET_DIR, 'chart.js'), 'text/javascript; charset=utf-8'],
    ['/assets/commission.js', join(ASSET_DIR, 'commission.js'), 'text/javascript; charset=utf-8'],
    ['/assets/plots.js', join(ASSET_DIR, 'plots.js'), 'text/javascript; charset=utf-8'],
    ['/assets/tools.js', join(ASSET_DIR, 'tools.js'), 'text/javascript; charset=utf-8'],
    ['/assets/uPlot.iife.min.js', uplot, 'text/javascript; charset=utf-8'],
    ['/assets/uPlot.min.css', join(uplot, '..', 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([path, file, type]) => [path, { type, body: readFileSync(file) }]));
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison: both sides hashed first, so neither content nor length leaks through timing. */
function tokenMatches(given: string | undefined, expected: Buffer): boolean {
  return given !== undefined && timingSafeEqual(digest(given), expected);
}

function bearer(req: IncomingMessage, url: URL): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1] ?? url.searchParams.get('token') ?? undefined;
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
};

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  let payload = typeof body === 'string' ? Buffer.from(body) : body;
  const extra: Record<string, string> = {};
  if (payload.length > 16_384 && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    payload = gzipSync(payload);
    extra['Content-Encoding'] = 'gzip';
    extra.Vary = 'Accept-Encoding';
  }
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(payload.length), ...extra, ...headers });
  res.end(payload);
}

const json = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) =>
  send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(value), { 'Cache-Control': 'no-store', ...headers });

const LOGIN_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>fieldgate: access token</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/status.css"></head>
<body><main class="login"><h1>fieldgate</h1><form method="get" action="/"><label for="token">This gateway's status page needs its access token
(<code>status.token</code> in the configuration).</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open</button></form></main></body></html>`;

/** Starts listening; rejects with the reason (address in use, not allowed without a token). */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const addr = parseListen(options.listen);
  if (!addr) throw new Error(`status.listen "${options.listen}" is not HOST:PORT`);
  const loopback = isLoopback(addr.host);
  if (!loopback && !options.token) throw new Error(`status.listen ${options.listen} is reachable from the network: a status.token is required`);
  const expected = options.token ? digest(options.token) : undefined;
  const { state, logger: log } = options;
  const maxClients = options.maxClients ?? 8;
  const assets = loadAssets();
  const clients = new Set<ServerResponse>();
  const gateway = () => gatewayOf(options.gateway);
  const tools = toolRoutes({ enabled: expected !== undefined, tokenMatches: (given) => expected !== undefined && tokenMatches(given, expected), gateway, log, json });
  // A flood of bad requests or refused connections logs one line a minute per kind, with the count held back.
  const rate = new RateLimitedLog(log, Date.now);
  const from = (socket: Socket) => ({ from: socket.remoteAddress });

  let lastKey = '';
  let lastSentAt = 0;
  const broadcast = (force: boolean) => {
    if (clients.size === 0) return;
    const snap = state.snapshot(gateway());
    const { now: _now, ...rest } = snap;
    const key = JSON.stringify(rest);
    if (!force && key === lastKey && Date.now() - lastSentAt < HEARTBEAT_MS) return;
    lastKey = key;
    lastSentAt = Date.now();
    const frame = `data: ${JSON.stringify(snap)}\n\n`;
    for (const res of clients) {
      if (res.writableLength > MAX_CLIENT_BACKLOG) res.destroy();
      else res.write(frame);
    }
  };

  // Alarm and link changes reach live pages at once; several in one burst make one snapshot.
  let pushTimer: NodeJS.Timeout | undefined;
  const unsubscribe = state.onChange(() => {
    pushTimer ??= setTimeout(() => {
      pushTimer = undefined;
      guarded(() => broadcast(true));
    }, 50);
  });
  let session: StatusSession | undefined;
  const onSessionState = (s: string, reason?: string) => state.observeUplink(s, reason);
  const follow = () => {
    const next = gateway().session;
    if (next === session) return;
    session?.off?.('state', onSessionState);
    next?.on?.('state', onSessionState);
    session = next;
  };
  // Logged once per run of failures: a stopped gateway (between stop and restart) fails every tick.
  let tickFailing = false;
  const guarded = (fn: () => void) => {
    try {
      fn();
      tickFailing = false;
    } catch (err) {
      if (!tickFailing) log.warn({ err }, 'status: cannot read the gateway; retrying every tick');
      tickFailing = true;
    }
  };
  follow();
  const ticker = setInterval(() => guarded(() => {
    follow();
    state.track(gateway());
    broadcast(false);
  }), options.intervalMs ?? 1000);
  ticker.unref();

  const events = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' }).end();
      return;
    }
    if (clients.size >= maxClients) {
      json(req, res, 503, { error: 'busy', message: `${maxClients} live pages are open already; close one or use /api/status` }, { 'Retry-After': '10' });
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(`retry: 3000\n\ndata: ${JSON.stringify(state.snapshot(gateway()))}\n\n`);
    clients.add(res);
    req.socket.setNoDelay(true);
    // A live page may see nothing for up to HEARTBEAT_MS; it is bounded by maxClients and the backlog instead.
    req.socket.setTimeout(0);
    res.on('close', () => clients.delete(res));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://status.invalid');
    } catch {
      rate.warn('status', 'malformed request', from(req.socket), 'status: malformed request line answered 400');
      json(req, res, 400, { error: 'bad-request', message: 'the request line is not a valid URL' }, { Connection: 'close' });
      return;
    }
    const toolPath = tools.owns(url.pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(toolPath && req.method === 'POST')) {
      json(req, res, 405, { error: 'method', message: 'read-only: GET and HEAD only (the tools under /api/tools take POST)' }, { Allow: 'GET, HEAD' });
      return;
    }
    if (!expected) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!isLoopback(host)) {
        json(req, res, 403, { error: 'host', message: 'this server answers only on a loopback address (127.0.0.1, localhost)' });
        return;
      }
    }
    const path = url.pathname;
    if (toolPath) {
      await tools.handle(req, res, url, !expected || tokenMatches(bearer(req, url), expected));
      return;
    }
    if (path === '/healthz') {
      const health = state.snapshot(gateway()).health;
      json(req, res, health.status === 'failing' ? 503 : 200, health);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const asset = assets.get(path);
    if (asset && path !== '/') {
      send(req, res, 200, asset.type, asset.body, { 'Cache-Control': 'max-age=3600' });
      return;
    }
    if (expected && !tokenMatches(bearer(req, url), expected)) {
      if (path === '/') send(req, res, 401, 'text/html; charset=utf-8', LOGIN_PAGE, { 'Cache-Control': 'no-store' });
      else json(req, res, 401, { error: 'unauthorized', message: 'send Authorization: Bearer TOKEN or ?token=TOKEN' }, { 'WWW-Authenticate': 'Bearer realm="fieldgate"' });
      return;
    }
    switch (path) {
      case '/':
        send(req, res, 200, asset!.type, asset!.body, { 'Cache-Control': 'no-store' });
        return;
      case '/api/status':
        json(req, res, 200, state.snapshot(gateway()));
        return;
      case '/api/history': {
        const device = url.searchParams.get('device');
        const point = url.searchParams.get('point');
        if (!device && !point) {
          json(req, res, 200, state.allHistory());
          return;
        }
        const config = gateway().config;
        const chart = device && point ? state.chart(config, device, point) : device ? state.deviceChart(config, device) : undefined;
        if (!chart) json(req, res, 404, { error: 'not-found', message: `no readings of ${device ?? '?'}/${point ?? '?'}: give device= (and point=) of a configured device` });
        else json(req, res, 200, chart);
        return;
      }
      case '/api/alarms':
        json(req, res, 200, { size: state.journal.size, entries: state.journal.entries() });
        return;
      case '/events':
        events(req, res);
        return;
      case '/metrics': {
        const text = await state.metricsText(gateway());
        send(req, res, 200, state.metrics.contentType, text, { 'Cache-Control': 'no-store' });
        return;
      }
      default:
        json(req, res, 404, { error: 'not-found', message: `no route ${path}; try /, /api/status, /api/history, /api/alarms, /events, /healthz, /metrics` });
    }
  };

  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const server = createServer({
    headersTimeout,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
    // node checks the two timeouts above only this often (30 s by default), which would let slow clients linger.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  }, (req, res) => {
    handle(req, res).catch((err) => {
      // The path only: the query may carry the token.
      const path = (req.url ?? '').split('?')[0]!.slice(0, 200);
      rate.warn('status', 'failed request', { err, path }, `status: request for ${path} failed`);
      if (!res.headersSent) json(req, res, 500, { error: 'internal', message: 'see the gateway log' });
      else res.destroy();
    });
  });
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  // Closes sockets that go quiet, above all those that connect and never send a request.
  server.timeout = options.idleTimeoutMs ?? 15_000;
  server.on('drop', (data) => {
    rate.warn('status', 'refused connection', { from: data?.remoteAddress }, `status: connection refused, ${server.maxConnections} are open already`);
  });
  // Replaces node's default answer so the event is counted and logged (once a minute), never with the request.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? 'unknown';
    if (code !== 'ECONNRESET' && code !== 'EPIPE') rate.warn('status', 'malformed request', { ...from(socket), code }, 'status: malformed request answered 400');
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (socket.writable && !pending?.headersSent) {
      const status = code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
    } else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'status server error'));
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `http://${host}:${bound.port}`;
  log.info({ url, token: expected ? 'required' : 'none (loopback only)' }, 'status page listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(ticker);
        clearTimeout(pushTimer);
        tools.close();
        unsubscribe();
        session?.off?.('state', onSessionState);
        for (const res of clients) res.end();
        clients.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
