/** Edge processing: pure steps over samples, composed per point, and the alarm state that survives a restart. */
export { Processor, aggregatePoints, type ActiveAlarm, type AlarmStateView, type ProcessorOptions } from './processor.js';
export { ALARM_STATE_PREFIX, alarmActive, alarmStateEntry, alarmStateKey, stateAfter } from './alarm-state.js';
export type { AlarmActionOptions, AlarmActionResult } from './alarm-isa.js';
export { NAMUR, namurCheck, type NamurVerdict } from './namur.js';
export { compileRange, type RangeFn } from './range.js';
export { GAP_FACTOR, parseDeadband } from './report.js';
export { NO_GOOD_SAMPLE, windowStart, type AggregateFn } from './aggregate.js';
export type * from './types.js';
