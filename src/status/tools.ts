/**
 * The tools behind the token on the status page: write a writable point, acknowledge / shelve / unshelve an
 * alarm, read any register and scan a bus for answering units. Commands are built exactly as the control
 * socket builds the CLI's (origin "local", a fresh id, ttlS 30) and go through the gateway's command guard, so
 * they are judged, audited and answered as the cloud's are; reads and scans are queued on the live bus
 * (Source.tool), one transaction at a time between its polls.
 *
 * Offered only when `status.token` is configured, and then only to a request that carries it in
 * `Authorization: Bearer` (never the query: a bookmarked ?token= link shows the page, it does not write), sends
 * JSON (a cross-site form can do neither without a preflight, which this server never grants), and, when the
 * browser says where it comes from, comes from this page's own origin.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answer } from '../commands/control.js';
import { pointFacts } from '../commands/facts.js';
import type { Command, CommandResult } from '../commands/types.js';
import type { Logger } from '../log.js';
import { parseToolRequest, type ScanHit, type ScanProgress, type ToolOutcome } from '../sources/modbus/tools.js';
import type { StatusGateway } from './types.js';

/** Every command from the page expires this soon: a press on a stale page must not run later. */
export const PAGE_COMMAND_TTL_S = 30;
export const PAGE_BY = 'status-page';
const MAX_BODY_BYTES = 4096;

export interface ToolRoutesOptions {
  /** Whether status.token is configured: without it no tool is offered. */
  enabled: boolean;
  /** Constant-time check of a token against status.token. */
  tokenMatches(given: string | undefined): boolean;
  gateway(): StatusGateway;
  log: Logger;
  json(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers?: Record<string, string>): void;
}

/** A scan as the page follows it: running, or how it ended. */
interface ScanJob {
  bus: string;
  state: 'running' | 'done' | 'cancelled' | 'failed';
  from: number;
  to: number;
  fc: number;
  address: number;
  timeoutMs: number;
  tried: number;
  total: number;
  unit?: number;
  found: ScanHit[];
  reason?: string;
  startedAt: number;
  ms?: number;
  controller: AbortController;
}

const NO_TOKEN = 'the tools (writes, alarm actions, register reads, scans) are offered only when status.token is configured';

function bearerHeader(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  return (h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null)?.[1];
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, 'content-type', 'send the request as Content-Type: application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'too-large', `the request is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid', 'the request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'invalid', 'the request is not a JSON object');
  return v as Record<string, unknown>;
}

/** Only the keys a page command may carry; everything else (an id, an expiry, an origin) is the server's. */
function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** `by`: the name typed in the form, else the page itself. */
function byOf(o: Record<string, unknown>): unknown {
  return typeof o.by === 'string' && o.by.trim() !== '' ? o.by.trim() : PAGE_BY;
}

export function toolRoutes(options: ToolRoutesOptions) {
  const { json, log } = options;
  const scans = new Map<string, ScanJob>();

  const busOf = (id: unknown) => {
    const bus = options.gateway().buses.find((b) => b.id === id);
    if (!bus) throw new HttpError(404, 'not-found', `no bus ${JSON.stringify(id)}`);
    if (!bus.tool) throw new HttpError(400, 'no-tools', `bus ${bus.id} is a line bus: register reads and scans are for Modbus buses`);
    return bus as typeof bus & { tool: NonNullable<typeof bus.tool> };
  };

  /** What the page shows: whether tools are offered, the writable points (from the configuration), the buses. */
  const describe = () => {
    if (!options.enabled) return { enabled: false, reason: NO_TOKEN };
    const gw = options.gateway();
    const facts = pointFacts(gw.config);
    const writable = [];
    for (const [device, points] of facts) {
      for (const [point, f] of points) {
        if (!f.write) continue;
        const { min, max, step, values } = f.write;
        writable.push({ device, point, type: f.type, ...(f.unit !== undefined ? { unit: f.unit } : {}), ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), ...(step !== undefined ? { step } : {}), ...(values ? { values } : {}) });
      }
    }
    const buses = gw.config.buses.filter((b) => b.transport !== 'line').map((b) => ({ id: b.id, transport: b.transport, scan: scanView(scans.get(b.id)) }));
    return { enabled: true, commands: gw.commands !== undefined, ttlS: PAGE_COMMAND_TTL_S, writable, buses };
  };

  const command = async (kind: 'write' | 'alarm', body: Record<string, unknown>): Promise<CommandResult> => {
    const gw = options.gateway();
    if (!gw.commands) throw new HttpError(503, 'no-commands', 'this gateway takes no commands');
    const keys = kind === 'write' ? ['device', 'point', 'value'] : ['action', 'device', 'point', 'alarm', 'durationS', 'note'];
    const c = { ...pick(body, keys), id: randomUUID(), ttlS: PAGE_COMMAND_TTL_S, by: byOf(body) };
    // The control socket's own path: the same parser, origin "local", the same guard and audit.
    const commands = gw.commands;
    const a = await answer(JSON.stringify({ op: 'command', kind, command: c }), {
      command: (cmd: Command) => commands.handle(cmd),
      alarms: () => [],
      now: Date.now,
    });
    if (!a.ok) throw new HttpError(400, 'invalid', a.error);
    return a.result!;
  };

  const startScan = async (body: Record<string, unknown>) => {
    const bus = busOf(body.bus);
    const running = scans.get(bus.id);
    if (running?.state === 'running') throw new HttpError(409, 'busy', `a scan of units ${running.from}-${running.to} is running on bus ${bus.id} (${running.tried}/${running.total}); cancel it or wait`);
    let request;
    try {
      request = parseToolRequest({ ...pick(body, ['from', 'to', 'fc', 'address', 'timeoutMs']), kind: 'scan' });
    } catch (err) {
      throw new HttpError(400, 'invalid', (err as Error).message);
    }
    if (request.kind !== 'scan') throw new HttpError(400, 'invalid', 'not a scan');
    const job: ScanJob = { bus: bus.id, state: 'running', from: request.from, to: request.to, fc: request.fc, address: request.address, timeoutMs: request.timeoutMs, tried: 0, total: request.to - request.from + 1, found: [], startedAt: Date.now(), controller: new AbortController() };
    scans.set(bus.id, job);
    log.info({ bus: bus.id, from: request.from, to: request.to, fc: request.fc, address: request.address }, 'status page: scan started');
    const progress = (p: ScanProgress) => {
      job.tried = p.tried;
      job.unit = p.unit;
      job.found = p.found;
    };
    void bus.tool(request, { signal: job.controller.signal, progress }).then((outcome: ToolOutcome) => {
      const scan = outcome.status === 'done' ? outcome.result : outcome.partial;
      if (scan && scan.kind === 'scan') Object.assign(job, { tried: scan.tried, found: scan.found, ms: scan.ms });
      job.state = outcome.status === 'failed' ? 'failed' : scan?.kind === 'scan' && scan.cancelled ? 'cancelled' : 'done';
      if (outcome.status === 'failed') job.reason = outcome.reason;
      log.info({ bus: bus.id, state: job.state, tried: job.tried, found: job.found.map((f) => f.unit) }, `status page: scan ${job.state}`);
    });
    // A refusal (a read running, the link down) comes back at once: answer with it.
    await new Promise((r) => setImmediate(r));
    return scanView(job);
  };

  const routes: Record<string, (req: IncomingMessage, url: URL) => Promise<[number, unknown]>> = {
    'POST /api/tools/unlock': async () => [200, { ok: true }],
    'POST /api/tools/write': async (req) => [200, await command('write', await readJson(req))],
    'POST /api/tools/alarm': async (req) => [200, await command('alarm', await readJson(req))],
    'POST /api/tools/read': async (req) => {
      const body = await readJson(req);
      const bus = busOf(body.bus);
      let request;
      try {
        request = parseToolRequest({ ...pick(body, ['unit', 'fc', 'address', 'count', 'type', 'order', 'length']), kind: 'read' });
      } catch (err) {
        throw new HttpError(400, 'invalid', (err as Error).message);
      }
      return [200, await bus.tool(request)];
    },
    'POST /api/tools/scan': async (req) => [202, await startScan(await readJson(req))],
    'GET /api/tools/scan': async (_req, url) => {
      const id = url.searchParams.get('bus');
      busOf(id);
      return [200, scanView(scans.get(id!)) ?? { bus: id, state: 'none' }];
    },
    'POST /api/tools/scan/cancel': async (req) => {
      const bus = busOf((await readJson(req)).bus);
      const job = scans.get(bus.id);
      if (job?.state !== 'running') throw new HttpError(409, 'not-running', `no scan is running on bus ${bus.id}`);
      job.controller.abort();
      return [202, scanView(job)];
    },
  };

  return {
    /** Whether `path` is one of the tools' routes (the server lets POST through only to these). */
    owns: (path: string) => path === '/api/tools' || path.startsWith('/api/tools/'),

    /** Answers a tools route; the server has checked the Host (without a token) and nothing else. */
    async handle(req: IncomingMessage, res: ServerResponse, url: URL, pageAuthorized: boolean): Promise<void> {
      const path = url.pathname;
      if (path === '/api/tools') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return json(req, res, 405, { error: 'method', message: 'GET only' }, { Allow: 'GET, HEAD' });
        // The description follows the page's own rule (the query token will do): it lets the page offer the form.
        if (options.enabled && !pageAuthorized) return json(req, res, 401, { error: 'unauthorized', message: 'send Authorization: Bearer TOKEN' }, { 'WWW-Authenticate': 'Bearer realm="fieldgate"' });
        return json(req, res, 200, describe());
      }
      if (!options.enabled) return json(req, res, 403, { error: 'no-token', message: NO_TOKEN });
      const route = routes[`${req.method} ${path}`];
      if (!route) {
        const methods = Object.keys(routes).filter((k) => k.endsWith(` ${path}`)).map((k) => k.split(' ')[0]!);
        if (methods.length) return json(req, res, 405, { error: 'method', message: `${path} takes ${methods.join(', ')}` }, { Allow: methods.join(', ') });
        return json(req, res, 404, { error: 'not-found', message: `no route ${path}` });
      }
      if (!options.tokenMatches(bearerHeader(req))) {
        return json(req, res, 401, { error: 'unauthorized', message: 'the tools take the token typed on the page, as Authorization: Bearer TOKEN (not ?token=)' }, { 'WWW-Authenticate': 'Bearer realm="fieldgate"' });
      }
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== 'null' && !sameOrigin(origin, req.headers.host)) {
        return json(req, res, 403, { error: 'origin', message: 'the tools answer only this page' });
      }
      try {
        const [status, value] = await route(req, url);
        json(req, res, status, value);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        json(req, res, err.status, { error: err.code, message: err.message });
      }
    },

    close(): void {
      for (const job of scans.values()) job.controller.abort();
    },
  };
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function scanView(job: ScanJob | undefined) {
  if (!job) return undefined;
  const { controller: _c, ...view } = job;
  return view;
}

export type ToolRoutes = ReturnType<typeof toolRoutes>;
