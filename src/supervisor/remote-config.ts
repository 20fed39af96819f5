/**
 * Remote configuration with commit-confirmed rollback (docs/remote-config.md). A signed file pushed on
 * `config/desired` is checked (envelope, signature, validity with key paths, guard rails), staged on disk,
 * applied through the supervisor, and kept on probation until the gateway proves healthy within confirmS:
 * the uplink connected and acknowledging, and every bus that was connected before connected again. If not,
 * the previous version (or the device's own file) comes back by itself and the change is reported
 * `rolled-back` once the link is up. Every decision is a `config` event in the outbox and a retained report.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConfigChangeRecord } from '../events.js';
import type { Config, RemoteConfigSettings } from '../config/schema.js';
import { configHash, type Gateway } from '../gateway.js';
import type { Logger } from '../log.js';
import { ConfigStore, type ConfigReport, type RemoteState, type VersionRef } from './config-store.js';
import { judgeConfig, parseEnvelope, publicKeyFrom, signatureValid, textHash } from './envelope.js';

type PendingChange = NonNullable<RemoteState['pending']>;

export interface RemoteConfigDeps {
  /** The device's own file and what it parsed to: the base every pushed version is judged against. */
  localFile: string;
  local: Config;
  localText: string;
  log: Logger;
  now?: () => number;
  /** Runs a change in the supervisor's queue (one change at a time). */
  enqueue(what: string, change: () => Promise<void>): Promise<void>;
  /** Applies a configuration, in place or by a restart; called inside a queued change. */
  apply(next: Config): Promise<void>;
  gateway(): Gateway;
}

/** The retained report topic of the fieldgate profile. */
export const reportedTopic = (config: Config) => `${config.uplink!.topicPrefix}/${config.gateway.id}/config/reported`;

export class RemoteConfig {
  readonly settings: RemoteConfigSettings;
  readonly store: ConfigStore;
  private readonly key: KeyObject;
  private readonly now: () => number;
  private state: RemoteState;
  /** The configuration the running gateway was started or reloaded with. */
  private running: Config;
  private probation: { deadline: number; since: number; busesUp: string[] } | undefined;
  /** A desired version that came while another was on probation: taken once that one is decided. */
  private waiting: Buffer | undefined;
  /** The session the current report was published on: a new connection publishes it again. */
  private reportedOn: unknown;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: RemoteConfigDeps) {
    this.settings = deps.local.remoteConfig!;
    this.store = ConfigStore.forDataDir(deps.local.gateway.dataDir);
    this.now = deps.now ?? Date.now;
    this.key = publicKeyFrom(readFileSync(this.settings.publicKeyFile!));
    this.state = { base: textHash(deps.localText), seen: 0 };
    this.running = deps.local;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /**
   * The configuration to start with: the pushed version that ran last, unless the device's own file changed
   * since (the technician's edit wins) or it cannot be read. A change still on probation at a start is given
   * its confirm window again once; a second start on probation (it crashed the gateway) rolls it back.
   */
  startup(): Config {
    const base = textHash(this.deps.localText);
    const s = this.store.readState();
    if (!s || s.base !== base) {
      if (s) this.deps.log.warn({ version: s.applied?.version }, 'the configuration file on the device changed: pushed versions are set aside, the file runs');
      this.state = { base, seen: s?.seen ?? 0 };
      this.store.writeState(this.state);
      return (this.running = this.deps.local);
    }
    this.state = s;
    if (s.pending) {
      s.pending.starts++;
      if (s.pending.starts > 1) {
        this.state.applied = s.pending.previous;
        const reason = `the gateway restarted twice while version ${s.pending.version} was on probation`;
        this.state.report = this.report(s.pending.version, 'rolled-back', { reason, hash: s.pending.hash });
        this.state.pending = undefined;
        this.deps.log.error({ version: s.report?.version }, `remote configuration rolled back at start: ${reason}`);
      }
      this.store.writeState(this.state);
    }
    const config = this.configOf(this.state.applied);
    if (this.state.pending) this.probation = { deadline: this.now() + this.settings.confirmS * 1000, since: this.now(), busesUp: [] };
    return (this.running = config);
  }

  /** SIGHUP: the device's file again; unchanged, the pushed version keeps running. */
  reloaded(local: Config, localText: string): Config {
    if (textHash(localText) !== this.state.base) {
      this.deps.log.warn('the configuration file on the device changed: it replaces the pushed version');
      this.state = { base: textHash(localText), seen: this.state.seen };
      this.probation = undefined;
      this.store.writeState(this.state);
      this.deps.local = local;
      this.deps.localText = localText;
      return (this.running = local);
    }
    return this.running;
  }

  /** A message on config/desired (retained: also at every connect). */
  desired(payload: Buffer): void {
    void this.deps.enqueue('remote configuration', () => this.take(payload));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get status(): { applied?: VersionRef; pending?: VersionRef; report?: ConfigReport; seen: number } {
    return { applied: this.state.applied, pending: this.state.pending, report: this.state.report, seen: this.state.seen };
  }

  /** `fieldgate config rollback --to VERSION`: a kept version (or 0, the device's file) applied now, on probation. */
  rollbackTo(version: number): Promise<ConfigReport> {
    return new Promise((resolve) => {
      void this.deps.enqueue('configuration rollback', async () => {
        if (version !== 0 && this.store.readVersion(version) === undefined) return resolve(this.report(version, 'rejected', { reason: `version ${version} is not kept on this gateway` }));
        const ref = version === 0 ? undefined : { version, hash: textHash(this.store.readVersion(version)!) };
        let next: Config;
        try {
          next = this.configOf(ref, true);
        } catch (err) {
          return resolve(this.report(version, 'rejected', { reason: (err as Error).message }));
        }
        await this.stage(ref ?? { version: 0, hash: this.state.base }, next);
        resolve(this.state.report!);
      });
    });
  }

  private async take(payload: Buffer): Promise<void> {
    if (this.state.pending) {
      this.waiting = payload;
      return;
    }
    const parsed = parseEnvelope(payload);
    if (!parsed.ok) return this.decide(parsed.version ?? 0, 'rejected', { reason: parsed.reason });
    const e = parsed.envelope;
    if (e.version <= this.state.seen) {
      // The retained desired comes again at every connect: only a different, older one is worth a word.
      if (e.version !== this.state.applied?.version && e.version !== this.state.report?.version) {
        this.decide(e.version, 'rejected', { reason: `version ${e.version} is not newer than ${this.state.seen}: ignored` });
      }
      return;
    }
    this.state.seen = e.version;
    if (!signatureValid(e, this.key)) return this.decide(e.version, 'rejected', { reason: 'the signature does not match remoteConfig.publicKeyFile (or the file was not signed with its key)' });
    const judged = judgeConfig(e.config, e.version, this.deps.local);
    if (!judged.ok) return this.decide(e.version, 'rejected', { reason: judged.reason, errors: judged.errors });
    this.store.saveVersion(e.version, e.config);
    await this.stage({ version: e.version, hash: textHash(e.config) }, judged.config);
  }

  /** Staged on disk before it runs: a power cut mid-change comes back on a known version (startup()). */
  private async stage(ref: VersionRef, next: Config): Promise<void> {
    const busesUp = this.deps.gateway().buses.filter((b) => b.linkState === 'connected').map((b) => b.id);
    this.state.pending = { ...ref, previous: this.state.applied, since: this.now(), starts: 0 };
    this.state.applied = ref.version === 0 ? undefined : ref;
    this.state.report = this.report(ref.version, 'pending', { hash: configHash(next) });
    this.store.writeState(this.state);
    this.audit(this.state.report);
    this.deps.log.info({ version: ref.version }, `applying configuration version ${ref.version}; on probation for ${this.settings.confirmS} s`);
    try {
      await this.deps.apply(next);
    } catch (err) {
      return this.unapplied(this.state.pending, err);
    }
    this.running = next;
    this.probation = { deadline: this.now() + this.settings.confirmS * 1000, since: this.now(), busesUp };
    this.reportedOn = undefined;
  }

  /**
   * A change that could not even be applied (a source driver missing from the install): back to the version
   * before at once, reported, and the next push taken. Left pending it would block every later push.
   */
  private unapplied(pending: PendingChange, err: unknown): Promise<void> {
    return this.backTo(pending, `it could not be applied (${err instanceof Error ? err.message : String(err)})`);
  }

  /** Once a second: the probation's verdict, and the report on every new connection. */
  tick(): void {
    const gw = this.deps.gateway();
    const p = this.probation;
    if (p && this.state.pending) {
      const missing = this.unhealthy(gw, p);
      if (!missing) void this.deps.enqueue('confirming the configuration', async () => this.confirm());
      else if (this.now() >= p.deadline) void this.deps.enqueue('rolling back the configuration', () => this.rollBack(missing));
    }
    const session = gw.session;
    if (this.state.report && session?.connected && this.reportedOn !== session && gw.config.uplink) {
      this.reportedOn = session;
      session.publish(reportedTopic(gw.config), JSON.stringify(this.state.report), 1, true).catch(() => (this.reportedOn = undefined));
    }
  }

  private unhealthy(gw: Gateway, p: { since: number; busesUp: string[] }): string | undefined {
    if (gw.config.uplink) {
      if (!gw.session?.connected) return 'the uplink did not connect';
      if ((gw.uplink?.stats.lastPubackAt ?? 0) < p.since) return 'the broker acknowledged nothing';
    }
    const down = p.busesUp.filter((id) => gw.buses.find((b) => b.id === id)?.linkState !== 'connected');
    if (down.length) return `bus ${down.join(', ')} did not connect again`;
    return undefined;
  }

  private confirm(): Promise<void> {
    const pending = this.state.pending;
    if (!pending || !this.probation) return Promise.resolve();
    this.probation = undefined;
    this.state.pending = undefined;
    this.decide(pending.version, 'applied', { hash: configHash(this.running) });
    const kept = [this.state.applied?.version, pending.previous?.version].filter((v): v is number => v !== undefined);
    this.store.prune(this.settings.keep, kept);
    this.deps.log.info({ version: pending.version }, `configuration version ${pending.version} confirmed healthy`);
    return this.next();
  }

  private async rollBack(why: string): Promise<void> {
    const pending = this.state.pending;
    if (!pending || !this.probation) return;
    this.probation = undefined;
    await this.backTo(pending, `${why} within ${this.settings.confirmS} s`);
  }

  /** Runs the version before `pending` again, reports the roll-back, then takes a push that waited. */
  private async backTo(pending: PendingChange, why: string): Promise<void> {
    const reason = `${why}: back to ${pending.previous ? `version ${pending.previous.version}` : "the device's file"}`;
    this.deps.log.error({ version: pending.version }, `configuration version ${pending.version} rolled back: ${reason}`);
    this.state.applied = pending.previous;
    this.state.pending = undefined;
    const previous = this.configOf(pending.previous);
    this.decide(pending.version, 'rolled-back', { reason, hash: pending.hash });
    await this.deps.apply(previous);
    this.running = previous;
    this.reportedOn = undefined;
    await this.next();
  }

  private async next(): Promise<void> {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) await this.take(w);
  }

  /** A version on disk as a running configuration; the device's file when absent or unreadable. */
  private configOf(ref: VersionRef | undefined, strict = false): Config {
    if (!ref) return this.deps.local;
    const text = this.store.readVersion(ref.version);
    const judged = text === undefined ? undefined : judgeConfig(text, ref.version, this.deps.local);
    if (judged?.ok) return judged.config;
    const why = judged ? judged.reason : 'its file is missing';
    if (strict) throw new Error(`version ${ref.version} cannot run: ${why}`);
    this.deps.log.error({ version: ref.version }, `pushed version ${ref.version} cannot run (${why}): the device's file runs`);
    this.state.applied = undefined;
    this.store.writeState(this.state);
    return this.deps.local;
  }

  private decide(version: number, state: ConfigReport['state'], extra: Omit<ConfigReport, 'version' | 'state' | 'ts'>): void {
    this.state.report = this.report(version, state, extra);
    this.store.writeState(this.state);
    this.audit(this.state.report);
    this.reportedOn = undefined;
    if (state === 'rejected') this.deps.log.warn({ version, errors: extra.errors?.length }, `pushed configuration version ${version} rejected: ${extra.reason}`);
  }

  private report(version: number, state: ConfigReport['state'], extra: Omit<ConfigReport, 'version' | 'state' | 'ts'> = {}): ConfigReport {
    return { version, state, ...extra, ts: this.now() };
  }

  private audit(r: ConfigReport): void {
    const record: ConfigChangeRecord = { kind: 'config', ...r };
    try {
      const outbox = this.deps.gateway().outbox;
      outbox.appendEvent(record);
      outbox.commit();
    } catch (err) {
      this.deps.log.error({ err }, 'cannot audit the configuration change');
    }
  }
}
