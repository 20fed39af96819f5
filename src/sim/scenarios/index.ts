/** Scenarios by the name `fieldgate simulate --scenario` and `startSimulator` accept. */
import type { Scenario } from '../simulator.js';
import { tunnel } from './tunnel.js';
import { villageWater } from './village-water.js';

export const SCENARIOS = {
  'village-water': villageWater,
  tunnel,
} as const satisfies Record<string, (options?: { seed?: number }) => Scenario>;

export type ScenarioName = keyof typeof SCENARIOS;
export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export function isScenarioName(name: string): name is ScenarioName {
  return Object.hasOwn(SCENARIOS, name);
}

export function createScenario(name: ScenarioName, options: { seed?: number } = {}): Scenario {
  return SCENARIOS[name](options);
}
