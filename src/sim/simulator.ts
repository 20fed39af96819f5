/**
 * A simulated bus: the units of one scenario, each answering, busy or dead, independent of transport.
 * Transports (server.ts) turn requests into calls here and replies into frames.
 */
import { EventEmitter } from 'node:events';
import { EX_BUSY, EX_ILLEGAL_VALUE, type Table, type UnitMap } from './registers.js';
import { MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ } from '../sources/modbus/types.js';

export type SimEvent = 'burst' | 'gas' | 'clear';
/** normal: answers; busy: exception 6 to everything; dead: never answers (a timeout at the client). */
export type UnitMode = 'normal' | 'busy' | 'dead';
export const UNIT_MODES: readonly UnitMode[] = ['normal', 'busy', 'dead'];
/** Milliseconds since the epoch. Injected by tests to move time without sleeping. */
export type Clock = () => number;

/** Unit 1 of every scenario starts (1) or clears (0) the scenario's event when this coil is written. */
export const TRIGGER_COIL = 100;

export interface SimUnit {
  id: number;
  name: string;
  map: UnitMap;
}

export interface Scenario {
  name: string;
  title: string;
  /** Site notes printed by `fieldgate simulate`. */
  notes: readonly string[];
  /** The event the scenario can start on demand. */
  event: Exclude<SimEvent, 'clear'>;
  eventDescription: string;
  units: readonly SimUnit[];
  readonly eventActive: boolean;
  setEvent(active: boolean, now: number): void;
}

export type Reply = { kind: 'ok'; values: number[] } | { kind: 'exception'; code: number } | { kind: 'silent' };

export interface SimulatorEvents {
  /** The scenario's event started or cleared; `by` says whether a coil write or the API did it. */
  event: [active: boolean, by: 'coil' | 'api'];
}

export class Simulator extends EventEmitter<SimulatorEvents> {
  private readonly modes = new Map<number, UnitMode>();
  private readonly units = new Map<number, SimUnit>();

  constructor(
    readonly scenario: Scenario,
    readonly clock: Clock = Date.now,
  ) {
    super();
    for (const unit of scenario.units) this.units.set(unit.id, unit);
  }

  hasUnit(id: number): boolean {
    return this.units.has(id);
  }

  mode(unit: number): UnitMode {
    return this.modes.get(unit) ?? 'normal';
  }

  setUnitMode(unit: number, mode: UnitMode): void {
    if (!this.units.has(unit)) throw new Error(`scenario ${this.scenario.name} has no unit ${unit}`);
    if (!UNIT_MODES.includes(mode)) throw new Error(`unknown unit mode "${mode}"`);
    this.modes.set(unit, mode);
  }

  trigger(event: SimEvent): void {
    if (event !== 'clear' && event !== this.scenario.event) {
      throw new Error(`scenario ${this.scenario.name} has no "${event}" event (it has "${this.scenario.event}" and "clear")`);
    }
    const active = event !== 'clear';
    if (active === this.scenario.eventActive) return;
    this.scenario.setEvent(active, this.clock());
    this.emit('event', active, 'api');
  }

  read(unitId: number, table: Table, address: number, count: number): Reply {
    const unit = this.units.get(unitId);
    const gate = this.gate(unit);
    if (gate) return gate;
    const max = table === 'coil' || table === 'discrete' ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
    if (count < 1 || count > max) return { kind: 'exception', code: EX_ILLEGAL_VALUE };
    return toReply(unit!.map.read(table, address, count, this.clock()));
  }

  write(unitId: number, table: 'coil' | 'holding', address: number, value: number | boolean): Reply {
    const unit = this.units.get(unitId);
    const gate = this.gate(unit);
    if (gate) return gate;
    const before = this.scenario.eventActive;
    const reply = toReply(unit!.map.write(table, address, value, this.clock()));
    if (this.scenario.eventActive !== before) this.emit('event', this.scenario.eventActive, 'coil');
    return reply;
  }

  /** The reply a missing, dead or busy unit gives before its registers are looked at. */
  private gate(unit: SimUnit | undefined): Reply | undefined {
    if (!unit) return { kind: 'silent' };
    const mode = this.mode(unit.id);
    if (mode === 'dead') return { kind: 'silent' };
    if (mode === 'busy') return { kind: 'exception', code: EX_BUSY };
    return undefined;
  }
}

function toReply(result: ReturnType<UnitMap['read']>): Reply {
  return result.ok ? { kind: 'ok', values: result.values } : { kind: 'exception', code: result.code };
}
